"""The trusted first stage inside a sandboxed process (see ``sandbox.py`` for the whole picture).

``sandbox.run_python`` starts ``python -I -S -B sandbox_child.py key=value ... site=DIRS`` in a fresh session
with the temporary directory as its working directory. Before one line of the untrusted program
runs, this stage, in this order:

1. reads the program (``program.py`` in the working directory);
2. joins the memory cgroup the parent made (root), while cgroupfs is still writable;
3. moves into new network and IPC namespaces (no interfaces but a downed loopback; SysV objects
   private and destroyed with the sandbox): plain ``unshare`` when it holds CAP_SYS_ADMIN, else
   with ``CLONE_NEWUSER``; where neither is allowed it carries on and only the guard stands;
4. confines the filesystem: every mount read-only, a tmpfs working directory (the disk quota),
   a private interpreter prefix re-exposed alone, ``/proc`` with hidepid=2;
5. when started as root with a ``uid`` in the config, drops to that otherwise unused uid with no
   capability at all (empty bounding set), non-dumpable; in every case no_new_privs;
6. sets resource limits: RLIMIT_AS, RLIMIT_CPU, RLIMIT_NPROC, RLIMIT_FSIZE, RLIMIT_NOFILE,
   RLIMIT_CORE = 0, soft = hard so that the program cannot raise them (RLIMIT_CPU's hard limit is
   one second above its soft one: SIGXCPU first, SIGKILL as the backstop);
7. installs seccomp, then either forks the program's process and becomes its judge
   (``judged_run``, see ``sandbox_judge.py``), or installs the guard and runs the program as
   ``__main__``, reporting how it ended through the exit status (``EXIT_*`` below).

Setup errors and the judge's verdict are written on the report pipe (``report=FD``), which the
program never holds; stderr belongs to the program and decides nothing.

Limits are set here rather than in a ``preexec_fn`` because ``preexec_fn`` is unsafe when the
parent has threads (the evaluator runs many sandboxes from a thread pool); this stage runs before
the program in the same process, so the ordering guarantee is the same.

This file must stay importable without side effects: the parent imports it for the constants.
"""

from __future__ import annotations

import os
import resource  # now: after unshare(CLONE_NEWUSER) capabilities that reached the stdlib are gone
import sys

EXIT_PASSED = 0
EXIT_FAILED = 10  # an AssertionError escaped: a test failed
EXIT_ERROR = 11  # any other exception (SyntaxError, NameError, ...)
EXIT_MEMORY = 12  # MemoryError (RLIMIT_AS)
EXIT_BLOCKED = 13  # the guard refused an operation
EXIT_EXITED = 14  # the program called exit() / sys.exit() before reaching its end
EXIT_SETUP = 97  # this stage could not build the sandbox; the program never ran

CLONE_NEWNS = 0x00020000
CLONE_NEWIPC = 0x08000000
CLONE_NEWUSER = 0x10000000
CLONE_NEWNET = 0x40000000
MS_RDONLY, MS_NOSUID, MS_NODEV, MS_NOEXEC, MS_REMOUNT, MS_BIND, MS_MOVE = 1, 2, 4, 8, 32, 4096, 8192
MS_REC, MS_PRIVATE = 1 << 14, 1 << 18
MOUNT_ATTR_RDONLY = 1
AT_FDCWD, AT_RECURSIVE = -100, 0x8000
SYS_MOUNT_SETATTR = 442  # the same number on x86_64 and aarch64 (Linux >= 5.12)
PR_SET_SECCOMP, SECCOMP_MODE_FILTER = 22, 2
# Per machine: the audit arch, then the syscalls refused with EACCES. socket() is refused outright
# (Unix sockets are filesystem paths a network namespace does not hide); io_uring would bypass the
# filter; ptrace, process_vm_readv/writev, pidfd_getfd and kcmp would reach the judge process.
SECCOMP_ARCH = {
    "x86_64": (0xC000003E, {"socket": 41, "io_uring_setup": 425, "ptrace": 101, "process_vm_readv": 310,
                            "process_vm_writev": 311, "pidfd_getfd": 438, "kcmp": 312,
                            "memfd_create": 319, "shmget": 29}),
    "aarch64": (0xC00000B7, {"socket": 198, "io_uring_setup": 425, "ptrace": 117, "process_vm_readv": 270,
                             "process_vm_writev": 271, "pidfd_getfd": 438, "kcmp": 272,
                             "memfd_create": 279, "shmget": 194}),
}
# Refused only where no memory cgroup counts shared memory (the equivalent bound: none at all).
UNCOUNTED_MEMORY_SYSCALLS = ("memfd_create", "shmget")
PR_SET_DUMPABLE = 4
PR_SET_KEEPCAPS = 8
PR_CAPBSET_DROP = 24
PR_SET_NO_NEW_PRIVS = 38
LINUX_CAPABILITY_VERSION_3 = 0x20080522


# Taken before the guard replaces os._exit and before the program can rebind anything.
_REAL_EXIT = os._exit
_REAL_WRITE = os.write


class SandboxViolation(PermissionError):
    """Raised by the guard; a PermissionError so that ``except OSError`` code behaves sensibly."""


_REPORT_FD: int | None = None  # the trusted report channel to the parent (never the program's)


def _setup_error(message: str) -> None:
    """The sandbox could not be built: said on the report channel, which the program never holds
    (stderr is the program's, and the parent never reads a verdict from it)."""
    if _REPORT_FD is not None:
        _REAL_WRITE(_REPORT_FD, f"setup-error {message}\n".encode("utf-8", "replace"))
    _REAL_EXIT(EXIT_SETUP)


# --- namespaces and privileges ---------------------------------------------------------------


def _libc():
    import ctypes

    return ctypes, ctypes.CDLL(None, use_errno=True)


def enter_network_namespace() -> str:
    """Move into new network and IPC namespaces; returns how ("netns", "userns+netns") or "none".

    The IPC namespace makes SysV shared memory, semaphores and message queues private to the
    sandbox: the kernel destroys them when its last process exits."""
    ctypes, libc = _libc()
    if libc.unshare(CLONE_NEWNET | CLONE_NEWIPC) == 0:
        return "netns"
    uid, gid = os.getuid(), os.getgid()
    if libc.unshare(CLONE_NEWUSER | CLONE_NEWNET | CLONE_NEWIPC) == 0:
        # Keep our identity inside the new user namespace (otherwise we show up as 65534).
        for path, text in (
            ("/proc/self/setgroups", "deny"),
            ("/proc/self/uid_map", f"{uid} {uid} 1"),
            ("/proc/self/gid_map", f"{gid} {gid} 1"),
        ):
            try:
                with open(path, "w") as f:
                    f.write(text)
            except OSError:
                pass
        return "userns+netns"
    return "none"


def join_memory_cgroup(path: str) -> None:
    """Move this process (and so everything it starts) into the cgroup the parent made: the
    kernel then counts anonymous memory, memfd, SysV and tmpfs pages of the whole sandbox."""
    with open(os.path.join(path, "cgroup.procs"), "w") as f:
        f.write(str(os.getpid()))


def confine_filesystem(root: str, quota_bytes: int, uid: int | None) -> str:
    """A private mount namespace where every mount is read-only and the working directory is a
    fresh tmpfs of ``quota_bytes`` (the disk quota): nothing the program writes outside it can
    exist, and everything it writes vanishes with the namespace. Returns how, or "none"."""
    ctypes, libc = _libc()

    class MountAttr(ctypes.Structure):
        _fields_ = [("attr_set", ctypes.c_uint64), ("attr_clr", ctypes.c_uint64),
                    ("propagation", ctypes.c_uint64), ("userns_fd", ctypes.c_uint64)]

    if libc.unshare(CLONE_NEWNS) != 0:
        return "none"
    if libc.mount(None, b"/", None, MS_REC | MS_PRIVATE, None) != 0:
        raise OSError(ctypes.get_errno(), "mount(MS_PRIVATE)")
    attr = MountAttr(MOUNT_ATTR_RDONLY, 0, 0, 0)
    if libc.syscall(SYS_MOUNT_SETATTR, AT_FDCWD, b"/", AT_RECURSIVE, ctypes.byref(attr), ctypes.sizeof(attr)) != 0:
        raise OSError(ctypes.get_errno(), "mount_setattr(/, read-only, recursive)")
    owner = f",uid={uid},gid={uid}" if uid is not None else ""
    options = f"size={max(quota_bytes, 1 << 16)},mode=0700,nr_inodes=4096{owner}".encode()
    if libc.mount(b"hrm-sandbox", root.encode(), b"tmpfs", MS_NOSUID | MS_NODEV, options) != 0:
        raise OSError(ctypes.get_errno(), "mount(tmpfs on the working directory)")
    os.chdir(root)  # into the new tmpfs (the old directory is now hidden beneath it)
    _hide_private_ancestors(libc, ctypes, MountAttr, root)
    # A fresh /proc that shows only processes the sandbox uid may inspect (hidepid=2): no other
    # process's command line, environment or status. Best effort: a user namespace cannot.
    libc.mount(b"proc", b"/proc", b"proc", MS_NOSUID | MS_NODEV | MS_NOEXEC, b"hidepid=2")
    return "mountns+ro+tmpfs"


def _interpreter_dirs() -> list[str]:
    """Directories the interpreter reads from (its prefix, the import path), outermost first."""
    dirs = {os.path.realpath(d) for d in (sys.prefix, sys.base_prefix, sys.exec_prefix, *sys.path)
            if d and os.path.isabs(d) and os.path.isdir(d)}
    return sorted(d for d in dirs if not any(d != o and d.startswith(o + os.sep) for o in dirs))


def _private_ancestor(path: str) -> str | None:
    """The outermost ancestor of ``path`` that others may not traverse (``/root`` for a pyenv
    interpreter), or None when the path is reachable by any uid."""
    parts = path.strip(os.sep).split(os.sep)
    for i in range(1, len(parts) + 1):
        ancestor = os.sep + os.sep.join(parts[:i])
        if not os.stat(ancestor).st_mode & 0o001:
            return ancestor
    return None


def _hide_private_ancestors(libc, ctypes, MountAttr, root: str) -> None:
    """Let a capability-less uid run the interpreter when it lives under a private directory.

    The private ancestor is covered by an empty read-only tmpfs (so nothing else in it, such as
    root's home, is visible) and only the interpreter's own directories are bind-mounted back,
    read-only, at their old paths: the stdlib imports as before, without CAP_DAC_READ_SEARCH.
    """
    wanted: dict[str, list[str]] = {}
    for d in _interpreter_dirs():
        ancestor = _private_ancestor(d)
        if ancestor is not None:
            wanted.setdefault(ancestor, []).append(d)
    for ancestor, dirs in wanted.items():
        staged = []
        for i, d in enumerate(dirs):  # hold each directory by a mount before the ancestor is covered
            stage = os.path.join(root, f".hrm-stage-{i}")
            os.mkdir(stage, 0o700)
            if libc.mount(d.encode(), stage.encode(), None, MS_BIND | MS_REC, None) != 0:
                raise OSError(ctypes.get_errno(), f"bind {d}")
            staged.append((stage, d))
        if libc.mount(b"hrm-sandbox-hide", ancestor.encode(), b"tmpfs", MS_NOSUID | MS_NODEV, b"mode=0755,size=65536") != 0:
            raise OSError(ctypes.get_errno(), f"mount(tmpfs over {ancestor})")
        for stage, d in staged:
            os.makedirs(d, 0o755, exist_ok=True)
            if libc.mount(stage.encode(), d.encode(), None, MS_MOVE, None) != 0:
                raise OSError(ctypes.get_errno(), f"move {d}")
            os.rmdir(stage)
            attr = MountAttr(MOUNT_ATTR_RDONLY, 0, 0, 0)
            if libc.syscall(SYS_MOUNT_SETATTR, AT_FDCWD, d.encode(), AT_RECURSIVE, ctypes.byref(attr), ctypes.sizeof(attr)) != 0:
                raise OSError(ctypes.get_errno(), f"mount_setattr({d}, read-only)")
        if libc.mount(None, ancestor.encode(), None, MS_REMOUNT | MS_RDONLY | MS_NOSUID | MS_NODEV, None) != 0:
            raise OSError(ctypes.get_errno(), f"remount {ancestor} read-only")


def restore_program(root: str, name: str, source: str, uid: int | None) -> None:
    """Put the program back into the fresh tmpfs (tracebacks quote its lines)."""
    path = os.path.join(root, name)
    with open(path, "w", encoding="utf-8") as f:
        f.write(source)
    if uid is not None:
        os.chown(path, uid, uid)


def install_seccomp(memory_counted: bool = True) -> str:
    """Refuse ``socket()`` (every family: Unix, abstract, inet, netlink), ``io_uring_setup`` and the
    calls that reach into another process (ptrace, process_vm_*, pidfd_getfd, kcmp) in the kernel,
    whatever the program rebuilds in Python; ``socketpair`` stays (asyncio). Without a memory
    cgroup (``memory_counted`` false) ``memfd_create`` and ``shmget`` are refused too: memory no
    limit would count."""
    import platform

    ctypes, libc = _libc()
    known = SECCOMP_ARCH.get(platform.machine())
    if known is None:
        return "none"
    arch, numbers = known
    refused = [nr for name, nr in numbers.items() if memory_counted is False or name not in UNCOUNTED_MEMORY_SYSCALLS]
    errno_eacces = 0x00050000 | 13
    n = len(refused)
    code = [  # (code, jt, jf, k)
        (0x20, 0, 0, 4),                 # A = seccomp_data.arch
        (0x15, 0, n + 4, arch),          # other ABI (int 0x80, x32 tricks) → kill
        (0x20, 0, 0, 0),                 # A = seccomp_data.nr
        (0x35, n + 1, 0, 0x40000000),    # x32 numbers → EACCES
    ]
    for i, nr in enumerate(refused):
        code.append((0x15, n - i, 0, nr))  # → EACCES
    code += [
        (0x06, 0, 0, 0x7FFF0000),        # allow
        (0x06, 0, 0, errno_eacces),
        (0x06, 0, 0, 0x80000000),        # SECCOMP_RET_KILL_PROCESS
    ]

    class SockFilter(ctypes.Structure):
        _fields_ = [("code", ctypes.c_uint16), ("jt", ctypes.c_uint8), ("jf", ctypes.c_uint8), ("k", ctypes.c_uint32)]

    class SockFprog(ctypes.Structure):
        _fields_ = [("len", ctypes.c_uint16), ("filter", ctypes.POINTER(SockFilter))]

    program = (SockFilter * len(code))(*[SockFilter(*row) for row in code])
    fprog = SockFprog(len(code), program)
    if libc.prctl(PR_SET_SECCOMP, SECCOMP_MODE_FILTER, ctypes.byref(fprog), 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_SECCOMP)")
    return "seccomp"


def drop_privileges(uid: int) -> None:
    """Root -> ``uid`` with no capability at all and no way back (empty bounding set, and
    no_new_privs set by the caller). Non-dumpable: no process of the same uid can ptrace it or
    open its ``/proc/PID/{mem,fd}`` (the program cannot reach the judge)."""
    ctypes, libc = _libc()
    last_cap = 40
    try:
        with open("/proc/sys/kernel/cap_last_cap") as f:
            last_cap = int(f.read())
    except OSError:
        pass
    for cap in range(last_cap + 1):
        libc.prctl(PR_CAPBSET_DROP, cap, 0, 0, 0)  # nothing exec'd later can regain a capability
    os.setgroups([])
    os.setresgid(uid, uid, uid)
    os.setresuid(uid, uid, uid)  # without KEEPCAPS this clears permitted and effective sets

    class CapHeader(ctypes.Structure):
        _fields_ = [("version", ctypes.c_uint32), ("pid", ctypes.c_int)]

    class CapData(ctypes.Structure):
        _fields_ = [("effective", ctypes.c_uint32), ("permitted", ctypes.c_uint32), ("inheritable", ctypes.c_uint32)]

    header = CapHeader(LINUX_CAPABILITY_VERSION_3, 0)
    data = (CapData * 2)()  # all zero: no capability, inheritable included
    if libc.capset(ctypes.byref(header), data) != 0:
        raise OSError(ctypes.get_errno(), "capset")
    libc.prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)
    if os.getuid() != uid or os.geteuid() != uid:
        raise OSError("uid did not change")
    with open("/proc/self/status") as f:
        if any(line.startswith(("CapEff:", "CapPrm:")) and int(line.split()[1], 16) for line in f):
            raise OSError("capabilities survived the uid change")


def set_no_new_privs() -> None:
    """No exec from here on can gain privileges (setuid bits and file capabilities are ignored)."""
    ctypes, libc = _libc()
    if libc.prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0:
        raise OSError(ctypes.get_errno(), "prctl(PR_SET_NO_NEW_PRIVS)")


def set_limits(limits: dict) -> None:
    def hard(name: str, value: int) -> None:
        resource.setrlimit(getattr(resource, name), (value, value))

    hard("RLIMIT_CORE", 0)
    # CPU: SIGXCPU at the soft limit ends the program (reported as a timeout); the kernel's SIGKILL
    # at the hard limit, one second later, is the backstop for a program that ignores SIGXCPU.
    resource.setrlimit(resource.RLIMIT_CPU, (int(limits["cpu_s"]), int(limits["cpu_s"]) + 1))
    hard("RLIMIT_FSIZE", int(limits["file_bytes"]))
    hard("RLIMIT_NOFILE", int(limits["open_files"]))
    hard("RLIMIT_NPROC", int(limits["processes"]))
    hard("RLIMIT_AS", int(limits["memory_bytes"]))


# --- the guard -------------------------------------------------------------------------------


def install_guard(root: str) -> None:
    """Refuse, at the Python level, what an evaluated program has no business doing.

    This is the "reliability guard" idea of OpenAI's human-eval: it stops accidents and careless
    code, not a determined attacker (the OS-level layers above are what hold against those).
    """
    import _io
    import builtins
    import io
    import posix

    real_realpath = os.path.realpath
    real_readlink = os.readlink
    real_getpgid = os.getpgid
    real_getpgrp = os.getpgrp
    real_kill = os.kill
    real_killpg = os.killpg
    real_open = builtins.open
    real_os_open = os.open
    root = real_realpath(root)
    allowed_devices = {"/dev/null", "/dev/stdout", "/dev/stderr"}

    def resolve(path, dir_fd=None) -> str:
        if isinstance(path, int):
            return real_readlink(f"/proc/self/fd/{path}")
        path = os.fsdecode(path)
        if dir_fd is not None and not os.path.isabs(path):
            path = os.path.join(real_readlink(f"/proc/self/fd/{dir_fd}"), path)
        return real_realpath(path)

    def check_path(what: str, path, dir_fd=None) -> None:
        if not isinstance(path, int) and os.fsdecode(path) in allowed_devices:
            return
        try:
            full = resolve(path, dir_fd)
        except (OSError, TypeError, ValueError):
            raise SandboxViolation(f"sandbox: {what} on an unresolvable path {path!r}") from None
        if full != root and not full.startswith(root + os.sep):
            raise SandboxViolation(f"sandbox: {what} outside the working directory: {full}")

    def refuse(name: str):
        def refused(*args, **kwargs):
            raise SandboxViolation(f"sandbox: {name} is not allowed")

        refused.__name__ = name.rsplit(".", 1)[-1]
        return refused

    def path_guarded(name: str, fn, fd_keywords=("dir_fd",)):
        """Check each leading path argument (and its keyword form) against the working directory."""
        names = ("src", "dst") if len(fd_keywords) == 2 else ("path",)

        def guarded(*args, **kwargs):
            for position, (arg_name, fd_keyword) in enumerate(zip(names, fd_keywords)):
                path = args[position] if position < len(args) else kwargs.get(arg_name)
                if path is not None:
                    check_path(name, path, kwargs.get(fd_keyword))
            return fn(*args, **kwargs)

        guarded.__name__ = fn.__name__
        return guarded

    write_flags = os.O_WRONLY | os.O_RDWR | os.O_CREAT | os.O_TRUNC | os.O_APPEND

    def guarded_os_open(path, flags, mode=0o777, *, dir_fd=None):
        if flags & write_flags:
            check_path("open for writing", path, dir_fd)
        return real_os_open(path, flags, mode, dir_fd=dir_fd)

    def guarded_open(file, mode="r", *args, **kwargs):
        if not isinstance(file, int) and any(c in mode for c in "wax+"):
            check_path("open for writing", file)
        return real_open(file, mode, *args, **kwargs)

    class GuardedFileIO(io.FileIO):
        def __init__(self, file, mode="r", *args, **kwargs):
            if not isinstance(file, int) and any(c in mode for c in "wax+"):
                check_path("open for writing", file)
            super().__init__(file, mode, *args, **kwargs)

    own_group = real_getpgrp()

    def in_own_group(pid: int) -> bool:
        if pid == 0:
            return True
        if pid < 0:
            return -pid == own_group
        try:
            return real_getpgid(pid) == own_group
        except OSError:
            return False

    def guarded_kill(pid, sig):
        if not in_own_group(pid):
            raise SandboxViolation(f"sandbox: os.kill({pid}) outside the sandbox's process group")
        return real_kill(pid, sig)

    def guarded_killpg(pgid, sig):
        if pgid not in (0, own_group):
            raise SandboxViolation(f"sandbox: os.killpg({pgid}) outside the sandbox's process group")
        return real_killpg(pgid, sig)

    for module in (builtins, io, _io):
        module.open = guarded_open
    io.FileIO = _io.FileIO = GuardedFileIO
    for module in (os, posix):
        if hasattr(module, "open"):
            module.open = guarded_os_open
        module.kill = guarded_kill
        module.killpg = guarded_killpg
        for name in ("remove", "unlink", "rmdir", "mkdir", "chmod", "chown", "lchown", "truncate",
                     "utime", "mkfifo", "mknod", "setxattr", "removexattr", "lchmod"):
            if hasattr(module, name):
                setattr(module, name, path_guarded(f"os.{name}", getattr(module, name)))
        for name in ("rename", "replace", "link", "symlink"):
            if hasattr(module, name):
                fds = ("dir_fd", "dir_fd") if name == "symlink" else ("src_dir_fd", "dst_dir_fd")
                setattr(module, name, path_guarded(f"os.{name}", getattr(module, name), fds))
        for name in ("system", "popen", "fork", "forkpty", "vfork", "posix_spawn", "posix_spawnp",
                     "execv", "execve", "execvp", "execvpe", "execl", "execle", "execlp", "execlpe",
                     "spawnv", "spawnve", "spawnvp", "spawnvpe", "spawnl", "spawnle", "spawnlp", "spawnlpe",
                     "setsid", "setpgid", "setpgrp", "chroot", "fchmod", "fchown", "ftruncate",
                     "setuid", "setgid", "setreuid", "setregid", "setresuid", "setresgid",
                     "pidfd_open", "_exit"):
            if hasattr(module, name):
                setattr(module, name, refuse(f"os.{name}"))
    # os.removedirs / os.makedirs / os.renames are built from the guarded primitives above.

    def refuse_all(module, names, prefix):
        for name in names:
            if hasattr(module, name):
                setattr(module, name, refuse(f"{prefix}.{name}"))

    # Modules the program may import later are patched when (and if) it imports them: importing
    # them all up front would cost every sandbox run tens of milliseconds.
    def block_sockets(module) -> None:
        # The class stays a class (socket.py, ssl and asyncio subclass it at import time); only
        # opening a new socket is refused, before any file descriptor exists. Wrapping an existing
        # descriptor stays allowed, so that local socketpair() works (asyncio's self-pipe).
        original = module.socket

        class socket(original):  # noqa: N801 - keeps the public name
            __slots__ = ()  # socket.py's subclass declares __weakref__ itself

            def __init__(self, family=-1, type=-1, proto=-1, fileno=None):
                if fileno is None:
                    raise SandboxViolation(f"sandbox: opening a socket ({module.__name__}.socket) is not allowed")
                super().__init__(family, type, proto, fileno)

        module.socket = socket
        refuse_all(module, ("create_connection", "create_server", "getaddrinfo", "gethostbyname",
                            "gethostbyname_ex", "gethostbyaddr"), module.__name__)

    patches = {
        "_socket": block_sockets,
        "socket": block_sockets,
        "subprocess": lambda m: refuse_all(m, ("Popen",), "subprocess"),  # also run/call/check_output
        "_posixsubprocess": lambda m: refuse_all(m, ("fork_exec",), "_posixsubprocess"),
        "shutil": lambda m: refuse_all(m, ("chown",), "shutil"),  # rmtree/move/copy use guarded os
        "signal": lambda m: refuse_all(m, ("pidfd_send_signal",), "signal"),
    }
    for name in list(patches):
        if name in sys.modules:
            patches.pop(name)(sys.modules[name])
    sys.meta_path.insert(0, _PatchOnImport(patches))
    # Foreign calls would bypass everything above; evaluated code never needs them. (subprocess,
    # multiprocessing, pty stay importable: every way they start a process is refused.)
    for name in ("ctypes", "_ctypes", "ctypes.util", "cffi", "_cffi_backend"):
        sys.modules[name] = None  # type: ignore[assignment]


class _PatchOnImport:
    """A meta-path finder that lets the normal finders load a module, then patches it."""

    def __init__(self, patches: dict):
        self.patches = patches

    def find_spec(self, name, path=None, target=None):
        patch = self.patches.get(name)
        if patch is None:
            return None
        for finder in sys.meta_path:
            if finder is self or not hasattr(finder, "find_spec"):
                continue
            spec = finder.find_spec(name, path, target)
            if spec is not None and spec.loader is not None:
                spec.loader = _PatchingLoader(spec.loader, patch)
                return spec
        return None


class _PatchingLoader:
    def __init__(self, loader, patch):
        self.loader, self.patch = loader, patch

    def create_module(self, spec):
        return self.loader.create_module(spec)

    def exec_module(self, module):
        self.loader.exec_module(module)
        self.patch(module)


# --- running the program ---------------------------------------------------------------------


def run_program(source: str, filename: str, proof: tuple[int, bytes] | None = None) -> None:
    """Execute the program as ``__main__`` and exit with the ``EXIT_*`` code for how it ended.

    The process exits from inside the ``except`` clause, before the exception and its frames are
    freed, so nothing a finalizer prints (unawaited coroutines, ``__del__``) follows the report.
    ``proof``: (fd, nonce) — only when the program ran to its end is the nonce the parent sent
    written back on ``fd``; an exit status of 0 without it (``posix._exit(0)`` before a failing
    assert) is not a pass.
    """
    write, real_exit = _REAL_WRITE, _REAL_EXIT  # the guard and the program rebind os.*

    def finish(code: int, exc: BaseException | None = None) -> None:
        for stream in (sys.stdout, sys.stderr):
            try:
                stream.flush()
            except BaseException:  # noqa: BLE001 - a broken stream must not change the verdict
                pass
        if exc is not None:
            try:
                import traceback

                text = "".join(traceback.format_exception(type(exc), exc, exc.__traceback__))
            except BaseException:  # noqa: BLE001
                text = f"{type(exc).__name__}: (traceback unavailable)\n"
            write(2, text.encode("utf-8", "replace"))
        real_exit(code)  # no atexit handlers, no lingering threads

    namespace = {"__name__": "__main__", "__file__": filename, "__builtins__": __builtins__}
    try:
        exec(compile(source, filename, "exec"), namespace)
    except SystemExit as exc:
        write(2, f"program called exit({exc.code!r}) before its end\n".encode())
        finish(EXIT_EXITED)
    except SandboxViolation as exc:
        finish(EXIT_BLOCKED, exc)
    except AssertionError as exc:
        finish(EXIT_FAILED, exc)
    except MemoryError as exc:
        finish(EXIT_MEMORY, exc)
    except BaseException as exc:  # noqa: BLE001 - any other way a program can fail is an error
        finish(EXIT_ERROR, exc)
    if proof is not None:
        try:
            write(proof[0], proof[1])
        except OSError:
            pass
    finish(EXIT_PASSED)


def _failure_line(exc: BaseException) -> str:
    try:
        import traceback

        return "".join(traceback.format_exception_only(type(exc), exc)).strip().splitlines()[-1][:300]
    except BaseException:  # noqa: BLE001
        return type(exc).__name__


def run_judged_program(source: str, filename: str, tail: str, rfd: int, wfd: int, judge_module) -> None:
    """The program's process under a judge: run the program (and the trusted ``tail``, MBPP's
    setup code), then answer the judge's calls until it hangs up. Nothing here decides a
    verdict: whatever the program does, the judge only ever receives data."""
    write, real_exit = _REAL_WRITE, _REAL_EXIT
    namespace = {"__name__": "__main__", "__file__": filename, "__builtins__": __builtins__}
    load = None
    try:
        exec(compile(source, filename, "exec"), namespace)
        if tail.strip():
            exec(compile(tail, "<setup>", "exec"), namespace)
    except SystemExit as exc:
        load = ("exited", f"program called exit({exc.code!r}) before its end")
    except SandboxViolation as exc:
        load = ("blocked", _failure_line(exc))
    except AssertionError as exc:
        load = ("failed", _failure_line(exc))
    except MemoryError as exc:
        load = ("memory", _failure_line(exc))
    except BaseException as exc:  # noqa: BLE001 - any other way a program can fail is an error
        load = ("error", _failure_line(exc))
    for stream in (sys.stdout, sys.stderr):
        try:
            stream.flush()
        except BaseException:  # noqa: BLE001
            pass
    if load is not None:
        write(2, f"{load[1]}\n".encode("utf-8", "replace"))
        try:
            judge_module._Lines(rfd, wfd).send({"load": list(load)})
        except BaseException:  # noqa: BLE001
            pass
        real_exit(0)
    try:
        judge_module.serve(namespace, rfd, wfd)
    finally:
        real_exit(0)


def _program_status(pid: int) -> tuple[str, str]:
    """How the program's process ended, once the judge heard nothing more from it."""
    import signal

    _, status = os.waitpid(pid, 0)
    if os.WIFSIGNALED(status):
        sig = os.WTERMSIG(status)
        if sig == signal.SIGXCPU:
            return "timeout", "CPU time limit (SIGXCPU)"
        name = signal.Signals(sig).name if sig in signal.Signals._value2member_map_ else str(sig)
        return "killed", f"the program's process was killed by {name}"
    return "exited", f"the program's process exited (status {os.WEXITSTATUS(status)}) in the middle of the tests"


def _load_judge_module():
    """``sandbox_judge.py`` beside this file, loaded by path (``python -I`` has no package path)."""
    import importlib.util

    path = os.path.join(os.path.dirname(os.path.abspath(__file__)), "sandbox_judge.py")
    spec = importlib.util.spec_from_file_location("hrm_sandbox_judge", path)
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def judged_run(config: dict, root: str, source: str, judge_fd: int, memory_counted: bool,
               judge_module) -> None:
    """Fork the program's process; this (leader) process becomes the judge. Exits."""
    to_program_r, to_program_w = os.pipe()
    to_judge_r, to_judge_w = os.pipe()
    report = config["report"]
    _REAL_WRITE(report, b"ready\n")
    pid = os.fork()
    if pid == 0:  # the program's process: no tests, no verdict channel, ever
        for fd in (judge_fd, report, to_program_w, to_judge_r):
            os.close(fd)
        if config.get("guard", True):
            install_guard(root)
        run_judged_program(source, os.path.join(root, config["program"]), config.get("tail", ""),
                           to_program_r, to_judge_w, judge_module)
    os.close(to_program_r)
    os.close(to_judge_w)
    try:  # (already so under a root parent) no process of our uid may ptrace us or open /proc/self/mem
        _libc()[1].prctl(PR_SET_DUMPABLE, 0, 0, 0, 0)
    except OSError:
        pass
    import json

    with os.fdopen(judge_fd, "rb") as f:
        spec = json.loads(f.read())
    real_kill, real_exit = os.kill, _REAL_EXIT
    if config.get("guard", True):
        install_guard(root)
    try:
        status, detail = judge_module.judge(spec, to_judge_r, to_program_w, lambda: _program_status(pid))
    except BaseException as exc:  # noqa: BLE001 - the judge itself failed: never a pass
        status, detail = "error", f"the judge failed: {type(exc).__name__}: {exc}"[:300]
    try:
        real_kill(pid, 9)
    except OSError:
        pass
    detail = " ".join(str(detail).split())[:300]
    _REAL_WRITE(report, f"verdict {status}\t{detail}\n".encode("utf-8", "replace"))
    real_exit(0)


def parse_config(args: list[str]) -> dict:
    """``key=value`` arguments (json would cost an import of ``re`` in every sandbox)."""
    config: dict = {"limits": {}}
    for arg in args:
        key, _, value = arg.partition("=")
        if key.startswith("limit."):
            config["limits"][key[len("limit."):]] = int(value)
        elif key == "uid":
            config["uid"] = int(value) if value else None
        elif key in ("proof_in", "proof_out", "quota_bytes", "report", "judge"):
            config[key] = int(value)
        elif key in ("guard", "network_namespace", "filesystem", "seccomp"):
            config[key] = value == "1"
        else:
            config[key] = value
    return config


def main(argv: list[str]) -> None:
    global _REPORT_FD
    config = parse_config(argv[1:])
    _REPORT_FD = config.get("report")
    if config.get("site"):  # started with -S: the installed packages, without running any .pth file
        sys.path.extend(d for d in config["site"].split(os.pathsep) if d not in sys.path)
    root = os.getcwd()
    try:
        with open(os.path.join(root, config["program"]), encoding="utf-8") as f:
            source = f.read()
    except OSError as exc:
        _setup_error(f"cannot read the program: {exc}")

    proof = None
    if "proof_in" in config:  # the nonce, read and its pipe closed before the program exists
        nonce = os.read(config["proof_in"], 64)
        os.close(config["proof_in"])
        proof = (config["proof_out"], nonce)
    # Loaded before the filesystem is confined: the project's own directory may sit under a
    # private ancestor (a 0700 checkout or temp dir) that the confinement covers.
    judge_module = _load_judge_module() if "judge" in config else None
    memory_counted = False
    if config.get("cgroup"):
        try:  # before the filesystem turns read-only (cgroupfs included)
            join_memory_cgroup(config["cgroup"])
            memory_counted = True
        except OSError as exc:
            _setup_error(f"cannot join the memory cgroup {config['cgroup']}: {exc}")
    if config.get("network_namespace", True):
        try:
            enter_network_namespace()  # best effort; sandbox.isolation() reports what held
        except OSError:
            pass
    if config.get("filesystem", True):
        try:  # needs CAP_SYS_ADMIN: root, or the user namespace entered above
            if confine_filesystem(root, config.get("quota_bytes", 64 << 20), config.get("uid")) != "none":
                restore_program(root, config["program"], source, config.get("uid"))
        except OSError as exc:
            _setup_error(f"cannot confine the filesystem: {exc}")
    if config.get("uid") is not None:
        try:
            drop_privileges(int(config["uid"]))
        except OSError as exc:
            _setup_error(f"cannot drop privileges to uid {config['uid']}: {exc}")
    try:
        set_no_new_privs()
        set_limits(config["limits"])
    except (OSError, ValueError) as exc:
        _setup_error(f"cannot set no_new_privs or resource limits: {exc}")
    if config.get("seccomp", True):
        try:
            install_seccomp(memory_counted)  # after no_new_privs (required of an unprivileged filter)
        except OSError as exc:
            _setup_error(f"cannot install the seccomp filter: {exc}")
    if "judge" in config:
        judged_run(config, root, source, config["judge"], memory_counted, judge_module)  # exits
    if config.get("guard", True):
        install_guard(root)
    if _REPORT_FD is not None:  # closed before the program exists: it cannot fake a setup error
        _REAL_WRITE(_REPORT_FD, b"ready\n")
        os.close(_REPORT_FD)
        _REPORT_FD = None
    run_program(source, os.path.join(root, config["program"]), proof)  # exits


if __name__ == "__main__":
    main(sys.argv)
