/* Compiled forwarding engine of proxystore.proxy.Proxy.
 *
 * `ProxyBase` stores the four proxy slots and forwards every type slot
 * (number, sequence, mapping, comparison, hash, iteration, call, str, async)
 * and `__class__` straight to the cached target. Attribute lookup asks the
 * proxy's type first (one cached `_PyType_Lookup`) and otherwise reads the
 * attribute from the target, so a resolved proxy never pays for a failed lookup plus an exception
 * as a pure-Python `__getattr__` does.
 *
 * When no target is cached, resolution always goes through the
 * `__proxy_wrapped__` attribute of the proxy's type (a Python property that
 * subclasses may override); this file never calls the factory itself.
 *
 * `_pure.py` holds the pure-Python twin of this type; both must behave the same.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <structmember.h>

typedef struct {
    PyObject_HEAD
    PyObject *factory;
    PyObject *target;
    PyObject *default_class;
    PyObject *default_hash;
    PyObject *weakreflist;
} ProxyObject;

static PyTypeObject ProxyBase_Type;

static PyObject *str_wrapped;            /* "__proxy_wrapped__" */
static PyObject *forward_always[5];      /* names always read from the target */

#define PROXY_CHECK(op) PyObject_TypeCheck((op), &ProxyBase_Type)

/* Return a new reference to the target, resolving through the type's
 * `__proxy_wrapped__` descriptor when nothing is cached. */
static inline PyObject *
proxy_target(PyObject *self)
{
    PyObject *target = ((ProxyObject *)self)->target;
    if (target != NULL) {
        Py_INCREF(target);
        return target;
    }
    return PyObject_GenericGetAttr(self, str_wrapped);
}

static int
is_forward_always(PyObject *name)
{
    /* Only dunder names can match: reject everything else in two reads. */
    if (PyUnicode_GET_LENGTH(name) < 7 || PyUnicode_READ_CHAR(name, 0) != '_'
        || PyUnicode_READ_CHAR(name, 1) != '_') {
        return 0;
    }
    for (size_t i = 0; i < sizeof(forward_always) / sizeof(forward_always[0]); i++) {
        if (name == forward_always[i]) {
            return 1;
        }
    }
    for (size_t i = 0; i < sizeof(forward_always) / sizeof(forward_always[0]); i++) {
        if (PyUnicode_Compare(name, forward_always[i]) == 0) {
            return 1;
        }
    }
    return 0;
}

/* ------------------------------------------------------------------ lifecycle */

static int
proxy_traverse(ProxyObject *self, visitproc visit, void *arg)
{
    Py_VISIT(self->factory);
    Py_VISIT(self->target);
    Py_VISIT(self->default_class);
    Py_VISIT(self->default_hash);
    return 0;
}

static int
proxy_clear(ProxyObject *self)
{
    Py_CLEAR(self->factory);
    Py_CLEAR(self->target);
    Py_CLEAR(self->default_class);
    Py_CLEAR(self->default_hash);
    return 0;
}

static void
proxy_dealloc(ProxyObject *self)
{
    PyObject_GC_UnTrack(self);
    if (self->weakreflist != NULL) {
        PyObject_ClearWeakRefs((PyObject *)self);
    }
    proxy_clear(self);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

/* ------------------------------------------------------------------ attributes */

/* Whether instances of `type` (a subclass declared without `__slots__`) carry
 * their own attribute dict. */
static inline int
has_instance_dict(PyTypeObject *type)
{
    return type->tp_dictoffset != 0 || PyType_HasFeature(type, Py_TPFLAGS_MANAGED_DICT);
}

/* Look `name` up in the instance dict of `self`: a new reference, or NULL
 * without an exception when absent (NULL with an exception on error). */
static PyObject *
instance_dict_lookup(PyObject *self, PyObject *name)
{
    PyObject *dict = PyObject_GenericGetDict(self, NULL);
    if (dict == NULL) {
        return NULL;
    }
    PyObject *value = PyDict_GetItemWithError(dict, name);
    Py_XINCREF(value);
    Py_DECREF(dict);
    return value;
}

static PyObject *
proxy_getattro(PyObject *self, PyObject *name)
{
    if (!PyUnicode_Check(name)) {
        return PyObject_GenericGetAttr(self, name);
    }
    int forward = is_forward_always(name);
    if (!forward && _PyType_Lookup(Py_TYPE(self), name) != NULL) {
        return PyObject_GenericGetAttr(self, name);
    }
    if (!forward && has_instance_dict(Py_TYPE(self))) {
        /* Attributes a subclass set on the proxy itself win over the target. */
        PyObject *own = instance_dict_lookup(self, name);
        if (own != NULL || PyErr_Occurred()) {
            return own;
        }
    }
    PyObject *target = ((ProxyObject *)self)->target;
    if (target != NULL) {
        return PyObject_GetAttr(target, name);
    }
    target = PyObject_GenericGetAttr(self, str_wrapped);
    if (target == NULL) {
        return NULL;
    }
    PyObject *res = PyObject_GetAttr(target, name);
    Py_DECREF(target);
    return res;
}

/* ------------------------------------------------------------------ helpers */

/* Define `static rtype fname params` that evaluates `expr` with the target
 * bound to `t` (a new reference, released afterwards). Every signature has a
 * parameter named `self`; `fail` is returned when resolution fails. */
#define FORWARD(rtype, fail, fname, params, expr) \
    static rtype fname params                     \
    {                                             \
        PyObject *t = proxy_target(self);         \
        if (t == NULL) {                          \
            return fail;                          \
        }                                         \
        rtype res = expr;                         \
        Py_DECREF(t);                             \
        return res;                               \
    }

#define UNARY(fname, call) FORWARD(PyObject *, NULL, fname, (PyObject * self), call(t))

/* A binary slot serves both `proxy op x` and the reflected `x op proxy`. */
#define BINARY(fname, call)                                              \
    FORWARD(PyObject *, NULL, fname##_left, (PyObject * self, PyObject * b), \
            call(t, b))                                                  \
    FORWARD(PyObject *, NULL, fname##_right, (PyObject * a, PyObject * self), \
            call(a, t))                                                  \
    static PyObject *fname(PyObject *a, PyObject *b)                     \
    {                                                                    \
        return PROXY_CHECK(a) ? fname##_left(a, b) : fname##_right(a, b); \
    }

/* Store an in-place result through the (possibly overridden) `__proxy_wrapped__`
 * setter and return the proxy itself, as `x op= y` expects. Steals `res`. */
static PyObject *
rebind_result(PyObject *self, PyObject *res)
{
    if (res == NULL) {
        return NULL;
    }
    int rc = PyObject_GenericSetAttr(self, str_wrapped, res);
    Py_DECREF(res);
    if (rc < 0) {
        return NULL;
    }
    Py_INCREF(self);
    return self;
}

#define INPLACE(fname, call)                                                 \
    FORWARD(PyObject *, NULL, fname##_result, (PyObject * self, PyObject * other), \
            call(t, other))                                                  \
    static PyObject *fname(PyObject *self, PyObject *other)                  \
    {                                                                        \
        return rebind_result(self, fname##_result(self, other));             \
    }

BINARY(proxy_add, PyNumber_Add)
BINARY(proxy_sub, PyNumber_Subtract)
BINARY(proxy_mul, PyNumber_Multiply)
BINARY(proxy_matmul, PyNumber_MatrixMultiply)
BINARY(proxy_truediv, PyNumber_TrueDivide)
BINARY(proxy_floordiv, PyNumber_FloorDivide)
BINARY(proxy_mod, PyNumber_Remainder)
BINARY(proxy_divmod, PyNumber_Divmod)
BINARY(proxy_lshift, PyNumber_Lshift)
BINARY(proxy_rshift, PyNumber_Rshift)
BINARY(proxy_and, PyNumber_And)
BINARY(proxy_xor, PyNumber_Xor)
BINARY(proxy_or, PyNumber_Or)

FORWARD(PyObject *, NULL, pow_first, (PyObject * self, PyObject *b, PyObject *c),
        PyNumber_Power(t, b, c))
FORWARD(PyObject *, NULL, pow_second, (PyObject * a, PyObject *self, PyObject *c),
        PyNumber_Power(a, t, c))
FORWARD(PyObject *, NULL, pow_third, (PyObject * a, PyObject *b, PyObject *self),
        PyNumber_Power(a, b, t))

static PyObject *
proxy_pow(PyObject *a, PyObject *b, PyObject *c)
{
    if (PROXY_CHECK(a)) {
        return pow_first(a, b, c);
    }
    return PROXY_CHECK(b) ? pow_second(a, b, c) : pow_third(a, b, c);
}

INPLACE(proxy_iadd, PyNumber_InPlaceAdd)
INPLACE(proxy_isub, PyNumber_InPlaceSubtract)
INPLACE(proxy_imul, PyNumber_InPlaceMultiply)
INPLACE(proxy_imatmul, PyNumber_InPlaceMatrixMultiply)
INPLACE(proxy_itruediv, PyNumber_InPlaceTrueDivide)
INPLACE(proxy_ifloordiv, PyNumber_InPlaceFloorDivide)
INPLACE(proxy_imod, PyNumber_InPlaceRemainder)
INPLACE(proxy_ilshift, PyNumber_InPlaceLshift)
INPLACE(proxy_irshift, PyNumber_InPlaceRshift)
INPLACE(proxy_iand, PyNumber_InPlaceAnd)
INPLACE(proxy_ixor, PyNumber_InPlaceXor)
INPLACE(proxy_ior, PyNumber_InPlaceOr)

static PyObject *
ipow_call(PyObject *t, PyObject *other)
{
    return PyNumber_InPlacePower(t, other, Py_None);
}
INPLACE(proxy_ipow_binary, ipow_call)

static PyObject *
proxy_ipow(PyObject *self, PyObject *other, PyObject *Py_UNUSED(mod))
{
    /* `x **= y` never passes a modulus. */
    return proxy_ipow_binary(self, other);
}

UNARY(proxy_neg, PyNumber_Negative)
UNARY(proxy_pos, PyNumber_Positive)
UNARY(proxy_abs, PyNumber_Absolute)
UNARY(proxy_invert, PyNumber_Invert)
UNARY(proxy_int, PyNumber_Long)
UNARY(proxy_float, PyNumber_Float)
UNARY(proxy_str, PyObject_Str)
UNARY(proxy_iter, PyObject_GetIter)

static PyObject *
index_or_int(PyObject *t)
{
    /* Same rule as the reference: operator.index() when the target has
     * __index__, int() otherwise. */
    PyNumberMethods *nb = Py_TYPE(t)->tp_as_number;
    if (nb != NULL && nb->nb_index != NULL) {
        return PyNumber_Index(t);
    }
    return PyNumber_Long(t);
}
UNARY(proxy_index, index_or_int)

FORWARD(int, -1, proxy_bool, (PyObject * self), PyObject_IsTrue(t))

/* ------------------------------------------------------------------ containers */

FORWARD(Py_ssize_t, -1, proxy_len, (PyObject * self), PyObject_Size(t))
FORWARD(PyObject *, NULL, proxy_getitem, (PyObject * self, PyObject *key),
        PyObject_GetItem(t, key))
FORWARD(int, -1, proxy_setitem, (PyObject * self, PyObject *key, PyObject *value),
        value == NULL ? PyObject_DelItem(t, key) : PyObject_SetItem(t, key, value))
FORWARD(int, -1, proxy_contains, (PyObject * self, PyObject *value),
        PySequence_Contains(t, value))

static PyObject *
proxy_sq_item(PyObject *self, Py_ssize_t i)
{
    PyObject *key = PyLong_FromSsize_t(i);
    if (key == NULL) {
        return NULL;
    }
    PyObject *res = proxy_getitem(self, key);
    Py_DECREF(key);
    return res;
}

static int
proxy_sq_ass_item(PyObject *self, Py_ssize_t i, PyObject *value)
{
    PyObject *key = PyLong_FromSsize_t(i);
    if (key == NULL) {
        return -1;
    }
    int res = proxy_setitem(self, key, value);
    Py_DECREF(key);
    return res;
}

/* ------------------------------------------------------------------ misc slots */

FORWARD(PyObject *, NULL, proxy_richcompare, (PyObject * self, PyObject *other, int op),
        PyObject_RichCompare(t, other, op))
FORWARD(PyObject *, NULL, proxy_call, (PyObject * self, PyObject *args, PyObject *kwargs),
        PyObject_Call(t, args, kwargs))
FORWARD(Py_hash_t, -1, hash_target, (PyObject * self), PyObject_Hash(t))

static Py_hash_t
proxy_hash(PyObject *self)
{
    ProxyObject *p = (ProxyObject *)self;
    if (p->target == NULL && p->default_hash != NULL && p->default_hash != Py_None) {
        if (PyExceptionInstance_Check(p->default_hash)) {
            /* hash(target) failed when the defaults were cached: fail alike
             * (without the old traceback, which would grow on every raise). */
            PyException_SetTraceback(p->default_hash, Py_None);
            PyErr_SetObject((PyObject *)Py_TYPE(p->default_hash), p->default_hash);
            return -1;
        }
        /* Same conversion as for an int returned by a Python __hash__. */
        Py_hash_t h = PyLong_AsSsize_t(p->default_hash);
        if (h == -1 && PyErr_Occurred()) {
            PyErr_Clear();
            return PyObject_Hash(p->default_hash);
        }
        return h == -1 ? -2 : h;
    }
    return hash_target(self);
}

static PyObject *
next_of(PyObject *t)
{
    if (!PyIter_Check(t)) {
        PyErr_Format(PyExc_TypeError, "'%.200s' object is not an iterator",
                     Py_TYPE(t)->tp_name);
        return NULL;
    }
    /* NULL without an exception set means exhausted, as for any iterator. */
    return Py_TYPE(t)->tp_iternext(t);
}
UNARY(proxy_iternext, next_of)

/* ------------------------------------------------------------------ async */

#define ASYNC_SLOT(fname, field, message)                                  \
    static PyObject *fname##_of(PyObject *t)                               \
    {                                                                      \
        PyAsyncMethods *am = Py_TYPE(t)->tp_as_async;                      \
        if (am == NULL || am->field == NULL) {                             \
            PyErr_Format(PyExc_TypeError, message, Py_TYPE(t)->tp_name);   \
            return NULL;                                                   \
        }                                                                  \
        return am->field(t);                                               \
    }                                                                      \
    UNARY(fname, fname##_of)

ASYNC_SLOT(proxy_await, am_await, "object %.100s can't be used in 'await' expression")
ASYNC_SLOT(proxy_aiter, am_aiter, "'%.100s' object is not an async iterable")
ASYNC_SLOT(proxy_anext, am_anext, "'%.100s' object is not an async iterator")

/* ------------------------------------------------------------------ __class__ */

static PyObject *str_class;  /* "__class__" */

/* The target's class, so that isinstance(proxy, type(target)) holds; while
 * unresolved, the cached default class (if any) avoids resolving. */
static PyObject *
proxy_get_class(PyObject *self, void *Py_UNUSED(closure))
{
    ProxyObject *p = (ProxyObject *)self;
    if (p->target == NULL && p->default_class != NULL && p->default_class != Py_None) {
        Py_INCREF(p->default_class);
        return p->default_class;
    }
    PyObject *t = proxy_target(self);
    if (t == NULL) {
        return NULL;
    }
    PyObject *res = PyObject_GetAttr(t, str_class);
    Py_DECREF(t);
    return res;
}

static int
proxy_set_class(PyObject *self, PyObject *value, void *Py_UNUSED(closure))
{
    PyObject *t = proxy_target(self);
    if (t == NULL) {
        return -1;
    }
    int res = PyObject_SetAttr(t, str_class, value);
    Py_DECREF(t);
    return res;
}

static PyGetSetDef proxy_getset[] = {
    {"__class__", proxy_get_class, proxy_set_class,
     PyDoc_STR("The target's class (the cached default class while unresolved)."),
     NULL},
    {NULL},
};

/* ------------------------------------------------------------------ type */

static PyMemberDef proxy_members[] = {
    {"__proxy_factory__", T_OBJECT_EX, offsetof(ProxyObject, factory), 0,
     "The callable that produces the target."},
    {"__proxy_target__", T_OBJECT_EX, offsetof(ProxyObject, target), 0,
     "The cached target (unset until resolved)."},
    {"__proxy_default_class__", T_OBJECT_EX, offsetof(ProxyObject, default_class), 0,
     "Class reported before resolution, or None."},
    {"__proxy_default_hash__", T_OBJECT_EX, offsetof(ProxyObject, default_hash), 0,
     "Hash (or the hash error) reported before resolution, or None."},
    {NULL},
};

static PyNumberMethods proxy_as_number = {
    .nb_add = proxy_add,
    .nb_subtract = proxy_sub,
    .nb_multiply = proxy_mul,
    .nb_remainder = proxy_mod,
    .nb_divmod = proxy_divmod,
    .nb_power = proxy_pow,
    .nb_negative = proxy_neg,
    .nb_positive = proxy_pos,
    .nb_absolute = proxy_abs,
    .nb_bool = proxy_bool,
    .nb_invert = proxy_invert,
    .nb_lshift = proxy_lshift,
    .nb_rshift = proxy_rshift,
    .nb_and = proxy_and,
    .nb_xor = proxy_xor,
    .nb_or = proxy_or,
    .nb_int = proxy_int,
    .nb_float = proxy_float,
    .nb_inplace_add = proxy_iadd,
    .nb_inplace_subtract = proxy_isub,
    .nb_inplace_multiply = proxy_imul,
    .nb_inplace_remainder = proxy_imod,
    .nb_inplace_power = proxy_ipow,
    .nb_inplace_lshift = proxy_ilshift,
    .nb_inplace_rshift = proxy_irshift,
    .nb_inplace_and = proxy_iand,
    .nb_inplace_xor = proxy_ixor,
    .nb_inplace_or = proxy_ior,
    .nb_floor_divide = proxy_floordiv,
    .nb_true_divide = proxy_truediv,
    .nb_inplace_floor_divide = proxy_ifloordiv,
    .nb_inplace_true_divide = proxy_itruediv,
    .nb_index = proxy_index,
    .nb_matrix_multiply = proxy_matmul,
    .nb_inplace_matrix_multiply = proxy_imatmul,
};

static PySequenceMethods proxy_as_sequence = {
    .sq_length = proxy_len,
    .sq_item = proxy_sq_item,
    .sq_ass_item = proxy_sq_ass_item,
    .sq_contains = proxy_contains,
};

static PyMappingMethods proxy_as_mapping = {
    .mp_length = proxy_len,
    .mp_subscript = proxy_getitem,
    .mp_ass_subscript = proxy_setitem,
};

static PyAsyncMethods proxy_as_async = {
    .am_await = proxy_await,
    .am_aiter = proxy_aiter,
    .am_anext = proxy_anext,
};

static PyTypeObject ProxyBase_Type = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "proxystore.proxy._cproxy.ProxyBase",
    .tp_doc = PyDoc_STR("Compiled forwarding engine of Proxy (not for direct use)."),
    .tp_basicsize = sizeof(ProxyObject),
    .tp_flags = Py_TPFLAGS_DEFAULT | Py_TPFLAGS_BASETYPE | Py_TPFLAGS_HAVE_GC,
    .tp_new = PyType_GenericNew,
    .tp_dealloc = (destructor)proxy_dealloc,
    .tp_traverse = (traverseproc)proxy_traverse,
    .tp_clear = (inquiry)proxy_clear,
    .tp_weaklistoffset = offsetof(ProxyObject, weakreflist),
    .tp_members = proxy_members,
    .tp_getset = proxy_getset,
    .tp_getattro = proxy_getattro,
    .tp_as_number = &proxy_as_number,
    .tp_as_sequence = &proxy_as_sequence,
    .tp_as_mapping = &proxy_as_mapping,
    .tp_as_async = &proxy_as_async,
    .tp_richcompare = proxy_richcompare,
    .tp_hash = proxy_hash,
    .tp_iter = proxy_iter,
    .tp_iternext = proxy_iternext,
    .tp_call = proxy_call,
    .tp_str = proxy_str,
};

static PyObject *str_target;  /* "__proxy_target__" */

/* target_or(proxy, default): the cached target of any proxy, or `default`.
 * Saves the resolving property from raising and catching AttributeError. */
static PyObject *
cproxy_target_or(PyObject *Py_UNUSED(module), PyObject *const *args, Py_ssize_t nargs)
{
    if (nargs != 2) {
        PyErr_SetString(PyExc_TypeError, "target_or() takes exactly 2 arguments");
        return NULL;
    }
    PyObject *proxy = args[0];
    if (PROXY_CHECK(proxy)) {
        PyObject *target = ((ProxyObject *)proxy)->target;
        target = target != NULL ? target : args[1];
        Py_INCREF(target);
        return target;
    }
    PyObject *res = PyObject_GenericGetAttr(proxy, str_target);
    if (res == NULL && PyErr_ExceptionMatches(PyExc_AttributeError)) {
        PyErr_Clear();
        Py_INCREF(args[1]);
        return args[1];
    }
    return res;
}

/* use_engine_getattro(cls): give a ProxyBase subclass the engine's attribute
 * lookup back. A class whose MRO defines `__getattr__` gets CPython's generic
 * "__getattribute__ then __getattr__" slot; `Proxy` defines a forwarding
 * `__getattr__` (for `super().__getattr__` and `hasattr`) that this lookup
 * already does, so classes that do not override it keep the fast slot. */
static PyObject *
cproxy_use_engine_getattro(PyObject *Py_UNUSED(module), PyObject *cls)
{
    if (!PyType_Check(cls) || !PyType_IsSubtype((PyTypeObject *)cls, &ProxyBase_Type)) {
        PyErr_SetString(PyExc_TypeError, "use_engine_getattro() takes a ProxyBase subclass");
        return NULL;
    }
    ((PyTypeObject *)cls)->tp_getattro = proxy_getattro;
    PyType_Modified((PyTypeObject *)cls);
    Py_RETURN_NONE;
}

static PyMethodDef cproxy_methods[] = {
    {"target_or", (PyCFunction)(void (*)(void))cproxy_target_or, METH_FASTCALL,
     PyDoc_STR("target_or(proxy, default): cached target of proxy, else default.")},
    {"use_engine_getattro", cproxy_use_engine_getattro, METH_O,
     PyDoc_STR("use_engine_getattro(cls): restore the engine's attribute lookup.")},
    {NULL},
};

static struct PyModuleDef cproxy_module = {
    PyModuleDef_HEAD_INIT,
    .m_name = "proxystore.proxy._cproxy",
    .m_doc = "Compiled forwarding engine for proxystore.proxy.Proxy.",
    .m_size = -1,
    .m_methods = cproxy_methods,
};

PyMODINIT_FUNC
PyInit__cproxy(void)
{
    static const char *forwarded[] = {
        "__doc__", "__module__", "__annotations__", "__dict__", "__weakref__",
    };
    str_wrapped = PyUnicode_InternFromString("__proxy_wrapped__");
    str_target = PyUnicode_InternFromString("__proxy_target__");
    str_class = PyUnicode_InternFromString("__class__");
    if (str_wrapped == NULL || str_target == NULL || str_class == NULL) {
        return NULL;
    }
    for (size_t i = 0; i < sizeof(forwarded) / sizeof(forwarded[0]); i++) {
        forward_always[i] = PyUnicode_InternFromString(forwarded[i]);
        if (forward_always[i] == NULL) {
            return NULL;
        }
    }
    if (PyType_Ready(&ProxyBase_Type) < 0) {
        return NULL;
    }
    PyObject *m = PyModule_Create(&cproxy_module);
    if (m == NULL) {
        return NULL;
    }
    Py_INCREF(&ProxyBase_Type);
    if (PyModule_AddObject(m, "ProxyBase", (PyObject *)&ProxyBase_Type) < 0) {
        Py_DECREF(&ProxyBase_Type);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
