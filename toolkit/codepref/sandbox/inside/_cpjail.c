/* codepref's confinement primitives for processes that must not hold ctypes (counted samples).
 *
 * Only calls that restrict the calling process (or set up its own namespace while still root):
 * a sample that finds this module can only confine itself further. Built once by the host
 * (codepref.sandbox.host.build_jail) against this interpreter's headers. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <errno.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <sched.h>
#include <signal.h>
#include <stdint.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/prctl.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

static PyObject *load_filter(PyObject *self, PyObject *args) {
    Py_buffer prog;
    if (!PyArg_ParseTuple(args, "y*", &prog)) return NULL;
    if (prog.len == 0 || prog.len % sizeof(struct sock_filter) != 0) {
        PyBuffer_Release(&prog);
        PyErr_SetString(PyExc_ValueError, "not a BPF program");
        return NULL;
    }
    struct sock_fprog fprog = {(unsigned short)(prog.len / sizeof(struct sock_filter)), (struct sock_filter *)prog.buf};
    int rc = prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0);
    if (rc == 0) rc = prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, &fprog, 0, 0);
    int saved = errno;
    PyBuffer_Release(&prog);
    if (rc != 0) { errno = saved; return PyErr_SetFromErrno(PyExc_OSError); }
    Py_RETURN_NONE;
}

static PyObject *prctl_int(PyObject *self, PyObject *args) {
    int option; unsigned long value;
    if (!PyArg_ParseTuple(args, "ik", &option, &value)) return NULL;
    if (option != PR_SET_PDEATHSIG && option != PR_SET_DUMPABLE && option != PR_SET_CHILD_SUBREAPER) {
        PyErr_SetString(PyExc_ValueError, "option not supported");
        return NULL;
    }
    if (prctl(option, value, 0, 0, 0) != 0) return PyErr_SetFromErrno(PyExc_OSError);
    Py_RETURN_NONE;
}

static PyObject *unshare_ns(PyObject *self, PyObject *args) {
    int flags;
    if (!PyArg_ParseTuple(args, "i", &flags)) return NULL;
    if (unshare(flags) != 0) return PyErr_SetFromErrno(PyExc_OSError);
    Py_RETURN_NONE;
}

static PyObject *detach(PyObject *self, PyObject *args) {
    const char *target;
    if (!PyArg_ParseTuple(args, "s", &target)) return NULL;
    if (umount2(target, MNT_DETACH) != 0) return PyErr_SetFromErrno(PyExc_OSError);
    Py_RETURN_NONE;
}

static PyObject *mount_tmpfs(PyObject *self, PyObject *args) {
    const char *target, *options;
    if (!PyArg_ParseTuple(args, "ss", &target, &options)) return NULL;
    if (mount("tmpfs", target, "tmpfs", MS_NOSUID | MS_NODEV | MS_NOEXEC, options) != 0)
        return PyErr_SetFromErrno(PyExc_OSError);
    Py_RETURN_NONE;
}

static int write_all(int fd, const void *buf, size_t n) {
    const char *p = buf;
    while (n > 0) {
        ssize_t k = write(fd, p, n);
        if (k < 0 && errno == EINTR) continue;
        if (k <= 0) return -1;
        p += k; n -= (size_t)k;
    }
    return 0;
}

/* The template's loop (counted samples): receive a request (up to 8 bytes, exactly 4 descriptors), fork,
 * answer the child's pid, wait for it, answer (pid, status, CPU seconds) as "<iid"; again. Returns only
 * in a forked child: (request, [descriptors]). No Python code runs in the template between forks, so
 * every child starts from the same interpreter state (the same heap: counts repeat exactly). */
static PyObject *fork_loop(PyObject *self, PyObject *args) {
    int sock;
    if (!PyArg_ParseTuple(args, "i", &sock)) return NULL;
    for (;;) {
        char req[8];
        int fds[4];
        union { char buf[CMSG_SPACE(sizeof(int) * 4)]; struct cmsghdr align; } ctrl;
        struct iovec iov = {req, sizeof req};
        struct msghdr msg;
        memset(&msg, 0, sizeof msg);
        msg.msg_iov = &iov;
        msg.msg_iovlen = 1;
        msg.msg_control = ctrl.buf;
        msg.msg_controllen = sizeof ctrl.buf;
        ssize_t n = recvmsg(sock, &msg, MSG_CMSG_CLOEXEC);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0) _exit(0);
        int nfds = 0;
        for (struct cmsghdr *c = CMSG_FIRSTHDR(&msg); c != NULL; c = CMSG_NXTHDR(&msg, c)) {
            if (c->cmsg_level == SOL_SOCKET && c->cmsg_type == SCM_RIGHTS) {
                int k = (int)((c->cmsg_len - CMSG_LEN(0)) / sizeof(int));
                for (int i = 0; i < k; i++) {
                    int fd;
                    memcpy(&fd, CMSG_DATA(c) + i * sizeof(int), sizeof(int));
                    if (nfds < 4) fds[nfds++] = fd; else close(fd);
                }
            }
        }
        if (nfds != 4) _exit(0);
        PyOS_BeforeFork();
        pid_t pid = fork();
        if (pid == 0) {
            PyOS_AfterFork_Child();
            return Py_BuildValue("(y#[iiii])", req, (Py_ssize_t)n, fds[0], fds[1], fds[2], fds[3]);
        }
        PyOS_AfterFork_Parent();
        for (int i = 0; i < 4; i++) close(fds[i]);
        int32_t pid32 = (int32_t)pid;
        if (write_all(sock, &pid32, 4) != 0) _exit(0);
        if (pid < 0) continue;
        int status = 0;
        struct rusage ru;
        memset(&ru, 0, sizeof ru);
        while (wait4(pid, &status, 0, &ru) < 0 && errno == EINTR) {}
        double cpu = (double)ru.ru_utime.tv_sec + ru.ru_utime.tv_usec / 1e6 + (double)ru.ru_stime.tv_sec
                     + ru.ru_stime.tv_usec / 1e6;
        char out[16];
        int32_t st32 = (int32_t)status;
        memcpy(out, &pid32, 4);
        memcpy(out + 4, &st32, 4);
        memcpy(out + 8, &cpu, 8);
        if (write_all(sock, out, sizeof out) != 0) _exit(0);
    }
}

/* Answers(iterable): a callable taking any arguments that returns the next item (None when there is
 * none), raising the item instead when it is an exception. The echo run of a counted run (sample.Echo)
 * answers with it for the program's objects: cheaper than any Python function, so the program's count
 * (the run's minus the echo's) never goes below the work it did. */
typedef struct {
    PyObject_HEAD
    PyObject *it;
} Answers;

static void answers_dealloc(Answers *self) {
    Py_XDECREF(self->it);
    Py_TYPE(self)->tp_free((PyObject *)self);
}

static PyObject *answers_new(PyTypeObject *type, PyObject *args, PyObject *kwds) {
    PyObject *iterable;
    if (!PyArg_ParseTuple(args, "O", &iterable)) return NULL;
    Answers *self = (Answers *)type->tp_alloc(type, 0);
    if (self == NULL) return NULL;
    self->it = PyObject_GetIter(iterable);
    if (self->it == NULL) { Py_DECREF(self); return NULL; }
    return (PyObject *)self;
}

static PyObject *answers_call(Answers *self, PyObject *args, PyObject *kwds) {
    PyObject *item = PyIter_Next(self->it);
    if (item == NULL) {
        if (PyErr_Occurred()) return NULL;
        Py_RETURN_NONE;
    }
    if (PyExceptionInstance_Check(item)) {
        PyErr_SetObject(PyExceptionInstance_Class(item), item);
        Py_DECREF(item);
        return NULL;
    }
    return item;
}

static PyTypeObject AnswersType = {
    PyVarObject_HEAD_INIT(NULL, 0)
    .tp_name = "_cpjail.Answers",
    .tp_basicsize = sizeof(Answers),
    .tp_dealloc = (destructor)answers_dealloc,
    .tp_call = (ternaryfunc)answers_call,
    .tp_flags = Py_TPFLAGS_DEFAULT,
    .tp_new = answers_new,
};

static PyMethodDef methods[] = {
    {"fork_loop", fork_loop, METH_VARARGS, "the counted samples' template loop (returns only in a child)"},
    {"load_filter", load_filter, METH_VARARGS, "install a seccomp BPF program (no_new_privs first; irreversible)"},
    {"prctl", prctl_int, METH_VARARGS, "prctl(PDEATHSIG | DUMPABLE | CHILD_SUBREAPER, value)"},
    {"unshare", unshare_ns, METH_VARARGS, "unshare(2)"},
    {"detach", detach, METH_VARARGS, "umount2(target, MNT_DETACH)"},
    {"mount_tmpfs", mount_tmpfs, METH_VARARGS, "a nosuid,nodev,noexec tmpfs on target with these options"},
    {NULL, NULL, 0, NULL}};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_cpjail", NULL, -1, methods};

PyMODINIT_FUNC PyInit__cpjail(void) {
    if (PyType_Ready(&AnswersType) < 0) return NULL;
    PyObject *m = PyModule_Create(&module);
    if (m == NULL) return NULL;
    Py_INCREF(&AnswersType);
    if (PyModule_AddObject(m, "Answers", (PyObject *)&AnswersType) < 0) {
        Py_DECREF(&AnswersType);
        Py_DECREF(m);
        return NULL;
    }
    return m;
}
