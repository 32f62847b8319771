/*
 * Optional accelerator of the shared-memory arena's read path
 * (proxystore.connectors._arena).
 *
 * A worker that resolves a proxy has cold caches: every Python-level step of the
 * read path costs cache misses. This module does the locked part of a read and
 * the making of the zero-copy view in C, with the same protocol as the pure
 * Python code (the same flock, the same entry words, the same holder words), so
 * processes with and without it share one arena safely.
 *
 *   hold(fd, entry_address, gen, pid, lock) -> (offset, size) | None | False
 *       Under the arena's flock (taken and dropped here when ``lock`` is true),
 *       check that the entry at ``entry_address`` holds generation ``gen`` in
 *       state READY and record ``pid`` in one of its holder words (the word that
 *       already has it, else the first free one). None: no such object. False:
 *       every holder word is taken by other processes.
 *
 *   HeldView(address, size, arena, slot, gen)
 *       A read-only buffer over ``size`` bytes at ``address``. It keeps ``arena``
 *       (and so the mapping) alive, and calls ``arena.release(slot, gen)`` when it
 *       is deallocated, which ends the hold taken by ``hold``. Its class attribute
 *       ``proxystore_zero_copy`` tells the deserializer that the memory is stable.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

#include <errno.h>
#include <stdint.h>
#include <sys/file.h>

/* Entry words, as in _arena.py. */
#define E_STATE 0
#define E_GEN 1
#define E_OFF 2
#define E_SIZE 4
#define E_HOLD 6
#define HOLDERS 10
#define READY 2

static int
take_lock(int fd)
{
    if (flock(fd, LOCK_EX | LOCK_NB) == 0) {
        return 0;
    }
    for (;;) {
        int rc, err;
        if (errno != EWOULDBLOCK && errno != EINTR) {
            PyErr_SetFromErrno(PyExc_OSError);
            return -1;
        }
        if (errno == EINTR && PyErr_CheckSignals() < 0) {
            return -1;
        }
        /* Another process holds the lock: wait without the GIL. The caller holds
         * the arena's thread lock, so no thread of ours can enter meanwhile. */
        Py_BEGIN_ALLOW_THREADS
        rc = flock(fd, LOCK_EX);
        err = errno;
        Py_END_ALLOW_THREADS
        if (rc == 0) {
            return 0;
        }
        errno = err;
    }
}

static PyObject *
hold(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 5) {
        PyErr_SetString(PyExc_TypeError, "hold() takes exactly 5 arguments");
        return NULL;
    }
    int fd = (int)PyLong_AsLong(args[0]);
    void *address = PyLong_AsVoidPtr(args[1]);
    long long gen = PyLong_AsLongLong(args[2]);
    long long pid = PyLong_AsLongLong(args[3]);
    int lock = PyObject_IsTrue(args[4]);
    if (PyErr_Occurred()) {
        return NULL;
    }
    if (address == NULL) {
        PyErr_SetString(PyExc_ValueError, "hold(): null entry address");
        return NULL;
    }
    if (lock && take_lock(fd) < 0) {
        return NULL;
    }
    volatile int64_t *w = (volatile int64_t *)address;
    PyObject *result;
    if (w[E_GEN] != gen || w[E_STATE] != READY) {
        result = Py_NewRef(Py_None);
    }
    else {
        long long offset = w[E_OFF];
        long long size = w[E_SIZE];
        int found = -1;
        for (int h = 0; h < HOLDERS; h++) {
            if (w[E_HOLD + h] == pid) {
                found = h;
                break;
            }
        }
        if (found < 0) {
            for (int h = 0; h < HOLDERS; h++) {
                if (w[E_HOLD + h] == 0) {
                    found = h;
                    break;
                }
            }
        }
        if (found < 0) {
            result = Py_NewRef(Py_False);
        }
        else {
            w[E_HOLD + found] = pid; /* decisive */
            result = Py_BuildValue("(LL)", offset, size);
        }
    }
    if (lock && flock(fd, LOCK_UN) != 0 && result != NULL) {
        Py_DECREF(result);
        return PyErr_SetFromErrno(PyExc_OSError);
    }
    return result;
}

typedef struct {
    PyObject_HEAD
    void *buf;
    Py_ssize_t size;
    PyObject *arena;
    long long slot;
    long long gen;
} HeldView;

static PyObject *
held_view_new(PyTypeObject *type, PyObject *args, PyObject *kwargs)
{
    PyObject *address, *arena;
    Py_ssize_t size;
    long long slot, gen;
    static char *kwlist[] = {"address", "size", "arena", "slot", "gen", NULL};
    if (!PyArg_ParseTupleAndKeywords(
            args, kwargs, "OnOLL:HeldView", kwlist, &address, &size, &arena, &slot,
            &gen)) {
        return NULL;
    }
    void *buf = PyLong_AsVoidPtr(address);
    if (buf == NULL && PyErr_Occurred()) {
        return NULL;
    }
    if (size < 0) {
        PyErr_SetString(PyExc_ValueError, "HeldView: negative size");
        return NULL;
    }
    HeldView *self = (HeldView *)type->tp_alloc(type, 0);
    if (self == NULL) {
        return NULL;
    }
    self->buf = buf;
    self->size = size;
    self->arena = Py_NewRef(arena);
    self->slot = slot;
    self->gen = gen;
    return (PyObject *)self;
}

static void
held_view_dealloc(HeldView *self)
{
    PyObject *arena = self->arena;
    self->arena = NULL;
    if (arena != NULL) {
        PyObject *type, *value, *traceback;
        PyErr_Fetch(&type, &value, &traceback);
        PyObject *res =
            PyObject_CallMethod(arena, "release", "LL", self->slot, self->gen);
        if (res == NULL) {
            PyErr_WriteUnraisable(arena);
        }
        Py_XDECREF(res);
        PyErr_Restore(type, value, traceback);
        Py_DECREF(arena);
    }
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static int
held_view_getbuffer(HeldView *self, Py_buffer *view, int flags)
{
    /* Read-only: a request for a writable buffer fails with BufferError. */
    return PyBuffer_FillInfo(view, (PyObject *)self, self->buf, self->size, 1, flags);
}

static PyBufferProcs held_view_as_buffer = {
    (getbufferproc)held_view_getbuffer,
    NULL,
};

static PyObject *
held_view_zero_copy(PyObject *self, void *closure)
{
    Py_RETURN_TRUE;
}

static PyGetSetDef held_view_getset[] = {
    {"proxystore_zero_copy", held_view_zero_copy, NULL,
     "Always true: the memory stays unchanged while this object lives.", NULL},
    {NULL},
};

static PyTypeObject HeldViewType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "proxystore.connectors._arenac.HeldView",
    .tp_doc = PyDoc_STR("Read-only bytes of an arena slot, held while it lives."),
    .tp_basicsize = sizeof(HeldView),
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = held_view_new,
    .tp_dealloc = (destructor)held_view_dealloc,
    .tp_as_buffer = &held_view_as_buffer,
    .tp_getset = held_view_getset,
};

static PyMethodDef module_methods[] = {
    {"hold", (PyCFunction)(void (*)(void))hold, METH_FASTCALL,
     PyDoc_STR("hold(fd, entry_address, gen, pid, lock) -> (offset, size) | None | "
               "False")},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module_def = {
    PyModuleDef_HEAD_INIT,
    .m_name = "proxystore.connectors._arenac",
    .m_doc = PyDoc_STR("C read path of the shared-memory arena."),
    .m_size = -1,
    .m_methods = module_methods,
};

PyMODINIT_FUNC
PyInit__arenac(void)
{
    if (PyType_Ready(&HeldViewType) < 0) {
        return NULL;
    }
    PyObject *module = PyModule_Create(&module_def);
    if (module == NULL) {
        return NULL;
    }
    if (PyModule_AddObjectRef(module, "HeldView", (PyObject *)&HeldViewType) < 0) {
        Py_DECREF(module);
        return NULL;
    }
    return module;
}
