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
 *   hold_view(arena, name, stem) -> memoryview | None | False | NotImplemented
 *       The arena read of a large object: parse ``<slot>.<gen>`` after the
 *       ``stem`` that starts the key name, then, holding the arena's
 *       thread lock and its flock, check that the slot holds generation ``gen``
 *       in state READY and record this process's pid in one of its holder words
 *       (the word that already has it, else the first free one), count the hold
 *       in ``arena._held``, and return a read-only memoryview of a HeldView.
 *       None: no such object. False: every holder word is taken by other
 *       processes. NotImplemented: the name is not a key of this arena.
 *       ``arena._cfields`` is ``(fd, address, table, slots, pid, held, tlock)``.
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
#define ENTRY_WORDS 16
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

/* Parse the decimal digits of s[*pos..] up to `stop` (or the end); -1 if none. */
static long long
parse_digits(const char *s, Py_ssize_t len, Py_ssize_t *pos, char stop)
{
    long long value = 0;
    Py_ssize_t i = *pos;
    Py_ssize_t start = i;
    while (i < len && s[i] != stop) {
        if (s[i] < '0' || s[i] > '9' || i - start >= 18) {
            return -1;
        }
        value = value * 10 + (s[i] - '0');
        i++;
    }
    if (i == start) {
        return -1;
    }
    *pos = i;
    return value;
}

static PyObject *
hold_view(PyObject *module, PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 3) {
        PyErr_SetString(PyExc_TypeError, "hold_view() takes exactly 3 arguments");
        return NULL;
    }
    PyObject *arena = args[0];
    if (!PyUnicode_Check(args[1]) || !PyUnicode_Check(args[2])) {
        PyErr_SetString(PyExc_TypeError, "hold_view(): name and stem must be str");
        return NULL;
    }
    Py_ssize_t len;
    const char *name = PyUnicode_AsUTF8AndSize(args[1], &len);
    if (name == NULL) {
        return NULL;
    }
    Py_ssize_t pos = PyUnicode_GET_LENGTH(args[2]);
    Py_ssize_t match = PyUnicode_Tailmatch(args[1], args[2], 0, pos, -1);
    if (match < 0) {
        return NULL;
    }
    /* Not a key of this arena, or not ASCII (the parse below counts bytes). */
    if (match == 0 || !PyUnicode_IS_ASCII(args[1])) {
        Py_RETURN_NOTIMPLEMENTED;
    }
    long long slot = parse_digits(name, len, &pos, '.');
    if (slot < 0 || pos >= len) {
        Py_RETURN_NOTIMPLEMENTED;
    }
    pos++; /* the dot */
    long long gen = parse_digits(name, len, &pos, '\0');
    if (gen < 0 || pos != len) {
        Py_RETURN_NOTIMPLEMENTED;
    }

    PyObject *fields = PyObject_GetAttrString(arena, "_cfields");
    if (fields == NULL) {
        return NULL;
    }
    if (!PyTuple_Check(fields) || PyTuple_GET_SIZE(fields) != 7) {
        Py_DECREF(fields);
        PyErr_SetString(PyExc_TypeError, "arena._cfields must be a 7-tuple");
        return NULL;
    }
    int fd = (int)PyLong_AsLong(PyTuple_GET_ITEM(fields, 0));
    char *base = (char *)PyLong_AsVoidPtr(PyTuple_GET_ITEM(fields, 1));
    long long table = PyLong_AsLongLong(PyTuple_GET_ITEM(fields, 2));
    long long slots = PyLong_AsLongLong(PyTuple_GET_ITEM(fields, 3));
    long long pid = PyLong_AsLongLong(PyTuple_GET_ITEM(fields, 4));
    PyObject *held = PyTuple_GET_ITEM(fields, 5);
    PyObject *tlock = PyTuple_GET_ITEM(fields, 6);
    if (PyErr_Occurred() || base == NULL || !PyDict_Check(held)) {
        Py_DECREF(fields);
        if (!PyErr_Occurred()) {
            PyErr_SetString(PyExc_TypeError, "arena._cfields is malformed");
        }
        return NULL;
    }
    if (slot >= slots) {
        Py_DECREF(fields);
        Py_RETURN_NONE;
    }

    PyObject *result = NULL;
    PyObject *key = NULL;
    long long offset = 0, size = 0;
    PyObject *acquired = PyObject_CallMethod(tlock, "acquire", NULL);
    if (acquired == NULL) {
        Py_DECREF(fields);
        return NULL;
    }
    Py_DECREF(acquired);
    /* Inside a locked section of this thread (never on the get path, but the
     * lock is re-entrant): the flock is already ours, do not take or drop it. */
    PyObject *depth_obj = PyObject_GetAttrString(arena, "_depth");
    long depth = depth_obj == NULL ? -1 : PyLong_AsLong(depth_obj);
    Py_XDECREF(depth_obj);
    int lock = depth == 0;
    if (PyErr_Occurred() || (lock && take_lock(fd) < 0)) {
        goto unlock_thread;
    }
    volatile int64_t *w = (volatile int64_t *)(base + (table + slot * ENTRY_WORDS) * 8);
    if (w[E_GEN] != gen || w[E_STATE] != READY) {
        result = Py_NewRef(Py_None);
    }
    else {
        offset = w[E_OFF];
        size = w[E_SIZE];
        int found = -1;
        for (int h = 0; h < HOLDERS && found < 0; h++) {
            if (w[E_HOLD + h] == pid) {
                found = h;
            }
        }
        for (int h = 0; h < HOLDERS && found < 0; h++) {
            if (w[E_HOLD + h] == 0) {
                found = h;
            }
        }
        if (found < 0) {
            result = Py_NewRef(Py_False);
        }
        else {
            w[E_HOLD + found] = pid; /* decisive */
            result = Py_NewRef(Py_True);
        }
    }
    if (lock && flock(fd, LOCK_UN) != 0) {
        Py_CLEAR(result);
        PyErr_SetFromErrno(PyExc_OSError);
    }
    if (result == Py_True) {
        /* Count the hold of this process: arena._held[(slot, gen)] += 1. */
        key = Py_BuildValue("(LL)", slot, gen);
        PyObject *count = key == NULL ? NULL : PyDict_GetItemWithError(held, key);
        long long n = count == NULL ? 0 : PyLong_AsLongLong(count);
        PyObject *next = PyErr_Occurred() ? NULL : PyLong_FromLongLong(n + 1);
        if (next == NULL || PyDict_SetItem(held, key, next) < 0) {
            Py_CLEAR(result);
        }
        Py_XDECREF(next);
    }
unlock_thread:;
    PyObject *exc_type, *exc_value, *exc_tb;
    PyErr_Fetch(&exc_type, &exc_value, &exc_tb);
    PyObject *released = PyObject_CallMethod(tlock, "release", NULL);
    Py_XDECREF(released);
    if (exc_type != NULL) {
        PyErr_Restore(exc_type, exc_value, exc_tb);
    }
    if (result == NULL || released == NULL) {
        Py_XDECREF(result);
        Py_XDECREF(key);
        Py_DECREF(fields);
        return NULL;
    }
    if (result != Py_True) {
        Py_XDECREF(key);
        Py_DECREF(fields);
        return result;
    }
    Py_DECREF(result);
    Py_XDECREF(key);
    Py_DECREF(fields);
    HeldView *view = PyObject_New(HeldView, &HeldViewType);
    if (view == NULL) {
        /* The hold is counted: give it back. */
        PyObject *res = PyObject_CallMethod(arena, "release", "LL", slot, gen);
        Py_XDECREF(res);
        return NULL;
    }
    view->buf = base + offset;
    view->size = (Py_ssize_t)size;
    view->arena = Py_NewRef(arena);
    view->slot = slot;
    view->gen = gen;
    PyObject *memory = PyMemoryView_FromObject((PyObject *)view);
    Py_DECREF(view); /* the memoryview keeps it; its release ends the hold */
    return memory;
}

static PyMethodDef module_methods[] = {
    {"hold_view", (PyCFunction)(void (*)(void))hold_view, METH_FASTCALL,
     PyDoc_STR("hold_view(arena, name, stem) -> memoryview | None | False | "
               "NotImplemented")},
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
