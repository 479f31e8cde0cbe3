"""Run untrusted Python (model-generated code) in a throw-away sandbox; with a :class:`Judge`,
its tests run in a separate judge process the program cannot reach.

    run_python(code, judge) ─► fresh temp dir (cwd, HOME, TMPDIR; owned by the sandbox uid)
         │                     memory cgroup of ``memory_mb`` (root: v2 or v1; see sandbox_cgroup)
         │              python -I -B sandbox_child.py   (new session = new process group,
         │                                               minimal environment, stdin /dev/null)
         │                 ├─ join the memory cgroup; new network + IPC namespaces
         │                 ├─ new mount namespace: every mount read-only, the working directory
         │                 │  a fresh tmpfs of ``max_disk_mb``, /proc with hidepid=2, a private
         │                 │  interpreter prefix (/root/.pyenv) re-exposed alone, read-only
         │                 ├─ root only: drop to a fresh unused uid, no capabilities at all,
         │                 │  non-dumpable, no_new_privs
         │                 ├─ rlimits: AS, CPU, NPROC, FSIZE, NOFILE, CORE=0 (soft = hard)
         │                 ├─ seccomp: socket(), io_uring, ptrace, process_vm_*, pidfd_getfd, kcmp
         │                 ├─ "ready" on the report pipe (setup errors go there too, never stderr)
         │                 └─ judge: fork ─► program process: guard, exec(program), answer calls
         │                               └► this process (leader): exec(tests) on plain data,
         │                                  "verdict STATUS\tDETAIL" on the report pipe
         │                    no judge: guard, exec(program); exit status + end-of-program nonce
         ├─ read stdout/stderr, at most ``max_output_bytes`` each (more: killed, "output_limit")
         ├─ wall clock ``timeout_s``: SIGKILL to the whole process group ("timeout")
         └─ always: SIGKILL the group and every process still running as the sandbox uid,
            reap, remove the cgroup (its OOM count says "memory"), delete the temp dir and
            anything the sandbox uid left at the top of /tmp, /var/tmp, /dev/shm, /run/lock

The threat model (what holds against a program that controls its own interpreter, and what is
assumed) is written down in docs/evaluation.md; ``isolation()`` says which layers hold on the
machine at hand. In short: the verdict is the judge's, which only ever receives data; the only
way to pass is to reply with the right values. One program's output cannot become another's
verdict or a suite-wide :class:`SandboxError` (those come only from the trusted report pipe).

What is isolated
    * Time: wall clock (``timeout_s``) for the whole group, CPU seconds per process (``cpu_s``).
    * Memory: one cgroup limit (``memory_mb``) for anonymous memory, memfd, SysV and tmpfs pages of
      the whole sandbox (root; else memfd_create and shmget are refused), RLIMIT_AS per process.
    * Processes: RLIMIT_NPROC (``max_processes``), enforced for the non-root sandbox uid; the
      guard also refuses ``os.fork``/``subprocess``/``os.system``/exec/spawn outright.
    * Files: writes only inside the tmpfs working directory (``max_disk_mb``; every other mount is
      read-only); reads only of what any uid may read (no capability; private directories such as
      root's home covered).
    * Network: a new network namespace and a seccomp filter refusing ``socket()`` of every family.
    * Other processes: invisible (hidepid=2), unsignalable (another uid, no CAP_KILL), and the
      judge unreachable (non-dumpable; ptrace and process_vm_* refused).
    * Output: each stream is read up to ``max_output_bytes``; beyond that the run is killed.

What is not isolated
    * World-readable files (the repository, the shared benchmark data) stay readable.
    * Without a root parent there is no separate uid, no cgroup and no capability drop to do:
      RLIMIT_NPROC then counts all of the user's processes, writes outside are stopped only by
      the guard (or the mount namespace where user namespaces allow one); ``isolation()`` says so.
    * Without a judge, the verdict comes from the program's own process (exit status + nonce).
    * The guard is Python-level: it stops careless and confused code, not an adversary; the
      kernel layers are what hold then. None of this is a boundary against kernel exploits; a VM
      or gVisor is.
"""

from __future__ import annotations

import functools
import json
import os
import secrets
import selectors
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Mapping

from trainer.eval import sandbox_cgroup as memory_cgroup
from trainer.eval import sandbox_child as child

__all__ = [
    "SandboxResult",
    "SandboxError",
    "Judge",
    "Isolation",
    "STATUSES",
    "run_python",
    "isolation",
]

CHILD_SCRIPT = Path(child.__file__).resolve()
PROGRAM_NAME = "program.py"
STATUSES = ("passed", "failed", "error", "timeout", "memory", "blocked", "exited", "output_limit", "killed")

# Fresh uids for sandboxed children of a root parent: high enough to belong to nobody, inside the
# range every full uid map covers.
_UID_BASE = 1_900_000_000
_UID_SPAN = 1_000_000
_uids_in_use: set[int] = set()
_uids_lock = threading.Lock()


class SandboxError(RuntimeError):
    """The sandbox itself failed (could not be built, or could not be torn down); the program's
    verdict is void. Never a model failure."""


@dataclass(frozen=True)
class SandboxResult:
    """How one program ended. ``passed`` is true only when the program ran to its end."""

    status: str  # one of STATUSES
    stdout: str
    stderr: str
    seconds: float
    returncode: int | None
    detail: str = ""  # the exception line, the signal, or why the run was stopped
    pid: int = 0  # the child's pid, also its process-group and session id
    uid: int | None = None  # the sandbox uid under a root parent
    workdir: str = ""  # the temporary directory (deleted by the time you read this)
    output_truncated: bool = False

    @property
    def passed(self) -> bool:
        return self.status == "passed"


@dataclass(frozen=True)
class Isolation:
    """Which OS-level layers hold on this machine (the guard holds everywhere)."""

    network_namespace: bool
    separate_uid: bool
    nproc_enforced: bool
    filesystem_confined: bool = False  # read-only mounts + tmpfs working directory (disk quota)
    sockets_blocked: bool = False  # seccomp: socket() refused by the kernel (Unix sockets too)
    no_capabilities: bool = False  # the program holds no capability (CapEff and CapPrm empty)
    ipc_namespace: bool = False  # SysV IPC private to the sandbox, destroyed with it
    processes_hidden: bool = False  # /proc shows no other uid's processes (hidepid=2)
    memory_cgroup: bool = False  # one limit counts anonymous, memfd, SysV and tmpfs memory
    # (without it memfd_create and shmget are refused instead)

    def describe(self) -> str:
        return ", ".join(f"{k}={'yes' if v else 'no'}" for k, v in self.__dict__.items())


@dataclass(frozen=True)
class Judge:
    """The tests of a program, run by a judge process the program cannot reach (see
    ``sandbox_judge.py``): the verdict is ``passed`` only when every check held there.

    ``checks``: the test code (HumanEval's ``def check(candidate): ...`` plus ``check(candidate)``;
    MBPP's asserts). ``context``: trusted code the judge runs first (HumanEval's prompt, for the
    helpers its tests use). ``tail``: trusted code run in the program's process after the program
    (MBPP's ``test_setup_code``, which builds fixtures from the program's classes). ``bind``: judge
    name → program name; ``None`` binds every name the checks use that is not a builtin, a
    standard-library module or defined by the context.
    """

    checks: str
    context: str = ""
    tail: str = ""
    bind: Mapping[str, str] | None = None



@functools.lru_cache(maxsize=1)
def _site_dirs() -> tuple[str, ...]:
    """This interpreter's site-packages, handed to the sandbox started with ``-S``.

    A program may still import what is installed, but no ``.pth`` file runs in the sandbox: they
    execute arbitrary code at start-up (an editable install's import hook alone took 80 of the
    135 ms of a sandbox's start here), and none of them is the program's business."""
    import site

    dirs = [*site.getsitepackages(), *([site.getusersitepackages()] if site.ENABLE_USER_SITE else [])]
    return tuple(d for d in dict.fromkeys(dirs) if os.path.isdir(d) and os.pathsep not in d)

def run_python(
    code: str,
    *,
    judge: Judge | None = None,
    timeout_s: float = 10.0,
    memory_mb: int = 1024,
    cpu_s: float | None = None,
    max_output_bytes: int = 1 << 20,
    max_processes: int = 32,
    max_file_mb: int = 64,
    max_disk_mb: int = 128,
    guard: bool = True,
    python: str | None = None,
) -> SandboxResult:
    """Run ``code`` as ``__main__`` in a fresh sandbox and say how it ended.

    With a ``judge``, the verdict is the judge's (the tests run outside the program's process);
    without one, it is how the program itself ended (a program that contains its own asserts can
    forge that: use a judge for anything scored). ``cpu_s`` defaults to ``timeout_s + 1`` (the wall
    clock normally fires first). ``guard=False`` leaves only the OS-level layers, for testing them;
    never use it for evaluation. Raises :class:`SandboxError` when the sandbox cannot be built or
    torn down (said on a channel only the sandbox's trusted stage holds, never by the program).
    """
    if timeout_s <= 0 or memory_mb <= 0 or max_output_bytes <= 0 or max_processes <= 0:
        raise ValueError("timeout_s, memory_mb, max_output_bytes and max_processes must be positive")
    uid = _allocate_uid()
    workdir = tempfile.mkdtemp(prefix="hrm-sandbox-")
    cgroup = memory_cgroup.create(int(memory_mb) << 20) if uid is not None else None
    passed_fds: list[int] = []
    try:
        program = Path(workdir, PROGRAM_NAME)
        program.write_text(code, encoding="utf-8")
        if uid is not None:
            os.chown(workdir, uid, uid)
            os.chown(program, uid, uid)
        limits = {
            "cpu_s": max(1, int(cpu_s if cpu_s is not None else timeout_s + 1)),
            "memory_bytes": int(memory_mb) << 20,
            "file_bytes": int(max_file_mb) << 20,
            "open_files": 256,
            "processes": max_processes if uid is not None else _current_tasks(os.getuid()) + max_processes,
        }
        report_in, report_out = os.pipe()  # setup errors and the judge's verdict: never the program's
        config = [f"program={PROGRAM_NAME}", f"uid={'' if uid is None else uid}", f"guard={int(guard)}",
                  f"report={report_out}", f"quota_bytes={int(max_disk_mb) << 20}"]
        passed_fds.append(report_out)
        if cgroup is not None:
            config.append(f"cgroup={cgroup.path}")
        if judge is None:
            proof_in, to_child = os.pipe()  # the nonce goes in here ...
            from_child, proof_out = os.pipe()  # ... and comes back only from a program that reached its end
            nonce = secrets.token_hex(32).encode()
            os.write(to_child, nonce)
            os.close(to_child)
            config += [f"proof_in={proof_in}", f"proof_out={proof_out}"]
            passed_fds += [proof_in, proof_out]
        else:  # the tests travel in an unlinked file: no path, and only the judge reads it
            spec = tempfile.TemporaryFile()
            spec.write(json.dumps({"checks": judge.checks, "context": judge.context,
                                   "bind": None if judge.bind is None else dict(judge.bind)}).encode())
            spec.flush()
            spec.seek(0)
            judge_fd = os.dup(spec.fileno())
            spec.close()
            config += [f"judge={judge_fd}"]
            passed_fds.append(judge_fd)
            if judge.tail.strip():
                config.append(f"tail={judge.tail}")
        config += [f"limit.{key}={value}" for key, value in limits.items()]
        interpreter = [python or sys.executable, "-I", "-B"]
        if python is None:  # our own interpreter: its site directories are known, so site.py is skipped
            interpreter.append("-S")
            config.append(f"site={os.pathsep.join(_site_dirs())}")
        env = {
            "PATH": "/usr/local/bin:/usr/bin:/bin",
            "HOME": workdir,
            "TMPDIR": workdir,
            "LANG": "C.UTF-8",
            "LC_ALL": "C.UTF-8",
            "OMP_NUM_THREADS": "1",
            "OPENBLAS_NUM_THREADS": "1",
            "MKL_NUM_THREADS": "1",
        }
        started = time.monotonic()
        proc = subprocess.Popen(
            [*interpreter, str(CHILD_SCRIPT), *config],
            cwd=workdir,
            env=env,
            stdin=subprocess.DEVNULL,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            start_new_session=True,
            close_fds=True,
            pass_fds=tuple(passed_fds),
        )
        for fd in passed_fds:
            os.close(fd)
        passed_fds = []
        try:
            stdout, stderr, stopped, truncated = _collect(proc, started + timeout_s, max_output_bytes, uid)
        finally:
            _kill_everything(proc, uid)  # already done unless reading failed; harmless twice
            report = _read_all(report_in)  # every writer is dead: EOF, never a block
            proven = judge is None and _read_all(from_child) == nonce
        seconds = time.monotonic() - started
        returncode = proc.returncode
        out_of_memory = cgroup is not None and cgroup.oom_kills() > 0
    finally:
        for fd in passed_fds:
            os.close(fd)
        if cgroup is not None:
            cgroup.remove()
        _cleanup(workdir, uid)
        _release_uid(uid)

    out = stdout.decode("utf-8", "replace")
    err = stderr.decode("utf-8", "replace")
    lines = report.decode("utf-8", "replace").splitlines()
    if lines and lines[0].startswith("setup-error "):
        raise SandboxError(lines[0][len("setup-error "):].strip())
    if not lines and stopped is None:
        raise SandboxError(f"the sandbox's first stage ended before the program started (exit status "
                           f"{returncode}): {err.strip()[-300:]}")
    if judge is not None:
        status, detail = _judged_status(lines, stopped, returncode, timeout_s, max_output_bytes)
    else:
        status, detail = _classify(returncode, stopped, err, timeout_s, max_output_bytes)
        if status == "passed" and not proven:  # exit status 0 from posix._exit(0) or a forged exit
            status, detail = "exited", "exit status 0 without the end-of-program proof (the program exited early)"
    if out_of_memory and status in ("killed", "error", "exited"):
        status, detail = "memory", f"the sandbox's memory limit of {memory_mb} MiB (anonymous, memfd, shared, files)"
    return SandboxResult(
        status=status,
        stdout=out,
        stderr=err,
        seconds=seconds,
        returncode=returncode,
        detail=detail,
        pid=proc.pid,
        uid=uid,
        workdir=workdir,
        output_truncated=truncated,
    )


def _judged_status(report: list[str], stopped: str | None, returncode: int | None, timeout_s: float,
                   cap: int) -> tuple[str, str]:
    """The judge's verdict line, or why there is none (never a pass without one)."""
    verdicts = [line for line in report[1:] if line.startswith("verdict ")]
    if stopped == "timeout":
        return "timeout", f"wall clock limit of {timeout_s:g} s"
    if stopped == "output_limit":
        return "output_limit", f"output over {cap} bytes"
    if verdicts:
        status, _, detail = verdicts[0][len("verdict "):].partition("\t")
        if status in STATUSES:
            return status, detail
    if returncode is not None and returncode < 0:
        sig = -returncode
        name = signal.Signals(sig).name if sig in signal.Signals._value2member_map_ else str(sig)
        return ("timeout", "CPU time limit (SIGXCPU)") if sig == signal.SIGXCPU else ("killed", f"killed by {name}")
    return "error", f"the judge gave no verdict (exit status {returncode})"


_EXIT_STATUS = {
    child.EXIT_PASSED: "passed",
    child.EXIT_FAILED: "failed",
    child.EXIT_ERROR: "error",
    child.EXIT_MEMORY: "memory",
    child.EXIT_BLOCKED: "blocked",
    child.EXIT_EXITED: "exited",
}


def _classify(returncode: int | None, stopped: str | None, stderr: str, timeout_s: float, cap: int) -> tuple[str, str]:
    if stopped == "timeout":
        return "timeout", f"wall clock limit of {timeout_s:g} s"
    if stopped == "output_limit":
        return "output_limit", f"output over {cap} bytes"
    if returncode is not None and returncode < 0:
        sig = -returncode
        name = signal.Signals(sig).name if sig in signal.Signals._value2member_map_ else str(sig)
        if sig == signal.SIGXCPU:
            return "timeout", "CPU time limit (SIGXCPU)"
        return "killed", f"killed by {name}"
    if returncode in _EXIT_STATUS:
        return _EXIT_STATUS[returncode], ("" if returncode == child.EXIT_PASSED else _exception_line(stderr))
    return "error", f"exit status {returncode}"


def _exception_line(stderr: str) -> str:
    """``"NameError: name 'x' is not defined"`` from the last traceback in ``stderr``.

    Taken from the traceback rather than the last line, since warnings may follow it.
    """
    head, marker, block = stderr.rpartition("Traceback (most recent call last):")
    if marker:
        for line in block.splitlines()[1:]:
            if line.strip() and not line.startswith((" ", "\t")):
                return line.strip()
    lines = [line.strip() for line in stderr.splitlines() if line.strip()]
    return lines[-1] if lines else ""


def _collect(proc: subprocess.Popen, deadline: float, cap: int, uid: int | None) -> tuple[bytes, bytes, str | None, bool]:
    """Read both pipes until the child exits, the deadline passes or a stream exceeds ``cap``.

    Returns (stdout, stderr, why it was stopped or None, whether output was cut). The moment the
    child exits (seen without reaping it, so its process-group id stays ours), everything left of
    the sandbox is killed; the pipes then reach EOF and the rest of the output is read.
    """
    buffers = {proc.stdout: bytearray(), proc.stderr: bytearray()}
    stopped: str | None = None
    truncated = False
    killed_at: float | None = None
    with selectors.DefaultSelector() as selector:
        for stream in buffers:
            os.set_blocking(stream.fileno(), False)
            selector.register(stream, selectors.EVENT_READ)
        while selector.get_map():
            now = time.monotonic()
            if killed_at is None:
                exited = _has_exited(proc.pid)
                if exited or now >= deadline:
                    stopped = None if exited else "timeout"
                    _kill_everything(proc, uid)
                    killed_at = time.monotonic()
            if killed_at is not None and time.monotonic() - killed_at > 1.0:
                break  # cannot happen once every writer is dead; a bound all the same
            wait = 0.05 if killed_at is not None else min(0.05, max(0.0, deadline - now))
            for key, _ in selector.select(timeout=wait):
                chunk = os.read(key.fd, 65536)
                if not chunk:
                    selector.unregister(key.fileobj)
                    continue
                buf = buffers[key.fileobj]
                room = cap - len(buf)
                if len(chunk) > room:
                    buf.extend(chunk[: max(room, 0)])
                    truncated = True
                    stopped = stopped or "output_limit"
                else:
                    buf.extend(chunk)
            if truncated and killed_at is None:
                break
    for stream in buffers:
        stream.close()
    return bytes(buffers[proc.stdout]), bytes(buffers[proc.stderr]), stopped, truncated


def _read_all(fd: int, cap: int = 1 << 16) -> bytes:
    """What the child's trusted stage wrote on a pipe (every writer is dead by now)."""
    data = b""
    try:
        os.set_blocking(fd, False)
        while len(data) < cap:
            chunk = os.read(fd, cap)
            if not chunk:
                break
            data += chunk
    except (BlockingIOError, OSError):
        pass
    finally:
        os.close(fd)
    return data


def _has_exited(pid: int) -> bool:
    try:
        info = os.waitid(os.P_PID, pid, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    except ChildProcessError:
        return True
    return info is not None


def _kill_everything(proc: subprocess.Popen, uid: int | None) -> None:
    """SIGKILL the process group (the leader is not yet reaped, so the id is still ours), reap
    the leader, then kill whatever still runs as the sandbox uid until nothing does."""
    if proc.returncode is None:
        try:
            os.killpg(proc.pid, signal.SIGKILL)
        except (ProcessLookupError, PermissionError):
            pass
        proc.wait()
    if uid is None:
        return
    for _ in range(200):
        pids = _pids_of_uid(uid)
        if not pids:
            return
        for pid in pids:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
        time.sleep(0.01)
    raise SandboxError(f"processes of sandbox uid {uid} survived 2 s of SIGKILL: {_pids_of_uid(uid)}")


def _pids_of_uid(uid: int) -> list[int]:
    """Live (not zombie) processes whose real uid is ``uid``.

    Every process's status is read: the sandbox's processes are non-dumpable, so their
    ``/proc/PID`` belongs to root and its owner says nothing.
    """
    pids = []
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/status") as f:
                status = f.read()
        except OSError:
            continue
        uid_at = status.find("\nUid:")
        if uid_at < 0 or status[uid_at + 5:].split(None, 1)[0] != str(uid):
            continue
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        if not fields.get("State", "").strip().startswith(("Z", "X")):
            pids.append(int(entry.name))
    return pids


def _current_tasks(uid: int) -> int:
    """Tasks (threads count toward RLIMIT_NPROC) the uid runs now."""
    total = 0
    for entry in os.scandir("/proc"):
        if not entry.name.isdigit():
            continue
        try:
            with open(f"/proc/{entry.name}/status") as f:
                status = f.read()
        except OSError:
            continue
        fields = dict(line.split(":", 1) for line in status.splitlines() if ":" in line)
        if fields.get("Uid", "").split()[:1] == [str(uid)]:
            total += int(fields.get("Threads", "1").strip() or 1)
    return total


def _cleanup(workdir: str, uid: int | None) -> None:
    shutil.rmtree(workdir, ignore_errors=True)
    if os.path.exists(workdir):  # a non-root parent meeting a chmod 000 directory
        for dirpath, dirnames, _ in os.walk(workdir):
            for name in dirnames:
                try:
                    os.chmod(os.path.join(dirpath, name), 0o700)
                except OSError:
                    pass
        shutil.rmtree(workdir, ignore_errors=True)
    if uid is None:
        return
    for shared in {tempfile.gettempdir(), "/tmp", "/var/tmp", "/dev/shm", "/run/lock", "/var/lock"}:
        try:
            entries = list(os.scandir(shared))
        except OSError:
            continue
        for entry in entries:
            try:
                if entry.stat(follow_symlinks=False).st_uid != uid:
                    continue
                if entry.is_dir(follow_symlinks=False):
                    shutil.rmtree(entry.path, ignore_errors=True)
                else:
                    os.unlink(entry.path)
            except OSError:
                pass


# --- sandbox uids ----------------------------------------------------------------------------


@functools.lru_cache(maxsize=1)
def _uid_range_mapped() -> bool:
    try:
        with open("/proc/self/uid_map") as f:
            rows = [tuple(int(x) for x in line.split()) for line in f if line.strip()]
    except OSError:
        return False
    return any(inside <= _UID_BASE and _UID_BASE + _UID_SPAN <= inside + count for inside, _, count in rows)


def _allocate_uid() -> int | None:
    """A fresh uid for one run when the parent is root and can switch to it; else None.

    Random in a range of a million that belongs to no account, and unique among this process's
    live runs. (Two evaluator processes drawing the same uid at the same moment would only share
    one RLIMIT_NPROC budget and one cleanup sweep: both are sandboxes.)
    """
    if os.geteuid() != 0 or not sys.platform.startswith("linux") or not _uid_range_mapped():
        return None
    with _uids_lock:
        while True:
            uid = _UID_BASE + secrets.randbelow(_UID_SPAN)
            if uid not in _uids_in_use:
                _uids_in_use.add(uid)
                return uid


def _release_uid(uid: int | None) -> None:
    if uid is not None:
        with _uids_lock:
            _uids_in_use.discard(uid)


# --- what holds here -------------------------------------------------------------------------

_isolation_cache: Isolation | None = None
_PROBE = """
import os, socket, sys
print(os.readlink("/proc/self/ns/net"))
print(os.getuid())
try:
    open("/var/tmp/.hrm-sandbox-probe", "w").close()
    os.unlink("/var/tmp/.hrm-sandbox-probe")
    print("rw")
except OSError:
    print("ro")
try:
    socket.socket(socket.AF_UNIX, socket.SOCK_STREAM).close()
    print("sockets")
except OSError:
    print("nosockets")
caps = [line.split()[1] for line in open("/proc/self/status") if line.startswith(("CapEff:", "CapPrm:"))]
print("nocaps" if all(int(c, 16) == 0 for c in caps) else "caps")
print(os.readlink("/proc/self/ns/ipc"))
print("hidden" if not os.path.exists("/proc/1/cmdline") else "visible")
"""


def isolation() -> Isolation:
    """Probe (once per process) which OS-level layers a sandboxed program gets on this machine."""
    global _isolation_cache
    if _isolation_cache is None:
        result = run_python(_PROBE, timeout_s=30, guard=False)  # the OS layers alone: our own probe code
        if not result.passed:
            raise SandboxError(f"isolation probe failed: {result.status}: {result.detail}\n{result.stderr}")
        child_net, child_uid, fs, sockets, caps, child_ipc, procs = result.stdout.split()
        separate_uid = result.uid is not None and int(child_uid) == result.uid
        _isolation_cache = Isolation(
            network_namespace=child_net != os.readlink("/proc/self/ns/net"),
            separate_uid=separate_uid,
            nproc_enforced=separate_uid or os.geteuid() != 0,
            filesystem_confined=fs == "ro",
            sockets_blocked=sockets == "nosockets",
            no_capabilities=caps == "nocaps",
            ipc_namespace=child_ipc != os.readlink("/proc/self/ns/ipc"),
            processes_hidden=procs == "hidden",
            memory_cgroup=separate_uid and memory_cgroup.available(),
        )
    return _isolation_cache
