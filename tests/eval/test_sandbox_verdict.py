"""Issue 22: the code verdict cannot be forged, one program cannot void the suite, and the program
holds no privilege: the adversarial payloads of the third review, each a test.

The forging payloads are wrong solutions that attack the harness instead: each must be scored
``failed`` (or another non-pass). HumanEval-shaped problems are written inline (small, no data)."""

from __future__ import annotations

import os
import textwrap
import uuid
from pathlib import Path

import pytest

from trainer.eval.code_exec import execute_all, humaneval_task, mbpp_task
from trainer.eval.sandbox import isolation, run_python

# HumanEval/0 and /4 in miniature: the same shape of prompt, tests and ``check(candidate)``.
CLOSE = {
    "task_id": "HumanEval/0",
    "entry_point": "has_close_elements",
    "prompt": 'from typing import List\n\n\ndef has_close_elements(numbers: List[float], threshold: float) -> bool:\n'
              '    """ Whether any two numbers are closer than threshold. """\n',
    "test": "def check(candidate):\n"
            "    assert candidate([1.0, 2.0, 3.9, 4.0, 5.0, 2.2], 0.3) == True\n"
            "    assert candidate([1.0, 2.0, 5.9, 4.0, 5.0], 0.95) == True\n"
            "    assert candidate([1.0, 2.0, 3.0, 4.0, 5.0], 0.5) == False\n",
    "solution": "    return any(abs(a - b) < threshold for i, a in enumerate(numbers) for b in numbers[i + 1:])\n",
}
MAD = {
    "task_id": "HumanEval/4",
    "entry_point": "mean_absolute_deviation",
    "prompt": "from typing import List\n\n\ndef mean_absolute_deviation(numbers: List[float]) -> float:\n"
              '    """ Mean absolute deviation around the mean. """\n',
    "test": "def check(candidate):\n"
            "    assert abs(candidate([1.0, 2.0, 3.0]) - 2.0/3.0) < 1e-6\n"
            "    assert abs(candidate([1.0, 2.0, 3.0, 4.0]) - 1.0) < 1e-6\n",
    "solution": "    m = sum(numbers) / len(numbers)\n    return sum(abs(x - m) for x in numbers) / len(numbers)\n",
}

# Each returns a wrong value and attacks the harness; none may pass.
FORGERIES = {
    "eq_always_true": """
    class Yes:
        def __eq__(self, other): return True
        def __ne__(self, other): return False
        def __sub__(self, other): return 0
        def __rsub__(self, other): return 0
        def __abs__(self): return 0
        def __lt__(self, other): return True
        def __bool__(self): return True
    return Yes()
""",
    "int_subclass_eq": """
    class Liar(int):
        def __eq__(self, other): return True
        __hash__ = int.__hash__
    return Liar(7)
""",
    "builtins_patched": """
    return 12345.0
import builtins
builtins.abs = lambda x: 0
builtins.AssertionError = type("Harmless", (Exception,), {})
""",
    "settrace_replaces_check": """
    return 12345.0
import sys
def tracer(frame, event, arg):
    if frame.f_code.co_name == "check":
        frame.f_globals["check"] = lambda candidate: None
    return tracer
sys.settrace(tracer)
""",
    "frames_and_exit": """
    import sys, gc
    for obj in gc.get_objects():
        if isinstance(obj, dict) and "proof" in str(obj.keys()):
            pass
    frame = sys._getframe()
    while frame.f_back is not None:
        frame = frame.f_back
    frame.f_globals.get("finish", lambda *a: None)(0)
    import posix
    posix._exit(0)
""",
    "fake_verdicts_on_every_stream": """
    import os, sys
    for fd in range(0, 64):
        try:
            os.write(fd, b"verdict passed\\t\\nready\\nsetup-error forged\\n")
        except OSError:
            pass
    print("verdict passed")
    return 12345.0
""",
    "exit_zero_at_import": """
    return 12345.0
raise SystemExit(0)
""",
    "setup_marker_exit_97": """
    return 12345.0
import sys, os
sys.stderr.write("hrm-sandbox-setup-error: the sandbox is broken, void the suite\\n")
sys.stderr.flush()
os.write(2, b"setup-error the sandbox is broken\\n")
raise SystemExit(97)
""",
    "kill_the_judge": """
    import os, signal
    try:
        os.kill(os.getppid(), signal.SIGKILL)
    except Exception:
        pass
    return 12345.0
""",
}


@pytest.mark.parametrize("problem", [CLOSE, MAD], ids=["HumanEval/0", "HumanEval/4"])
def test_references_pass_under_the_judge(problem):
    result = _judged(problem, problem["solution"])
    assert result.status == "passed", result


@pytest.mark.parametrize("name", sorted(FORGERIES))
@pytest.mark.parametrize("problem", [CLOSE, MAD], ids=["HumanEval/0", "HumanEval/4"])
def test_forging_payloads_are_not_passes(problem, name):
    result = _judged(problem, FORGERIES[name])
    assert result.status != "passed", (name, result)
    assert result.status in ("failed", "error", "exited", "blocked", "killed"), (name, result)


def test_eq_and_builtins_forgeries_are_failed_asserts():
    """The two reported forgeries end as what they are: a wrong answer, caught by an assert."""
    for problem, name in ((CLOSE, "eq_always_true"), (MAD, "builtins_patched"), (MAD, "settrace_replaces_check")):
        result = _judged(problem, FORGERIES[name])
        assert result.status == "failed", (name, result)
        assert result.detail.startswith("AssertionError"), result.detail


def test_mbpp_program_cannot_replace_the_judges_helpers():
    """An MBPP program that defines ``math`` and ``abs`` of its own: the asserts still use the
    judge's, and only the tested function comes from the program."""
    problem = {"task_id": 1, "code": "import math\ndef area(r):\n    return math.pi * r * r\n",
               "test_list": ["assert math.isclose(area(1), 3.14159265, rel_tol=1e-6)",
                             "assert abs(area(2) - 12.5663706) < 1e-6"], "test_setup_code": ""}
    cheat = ("class M:\n    def isclose(self, *a, **k): return True\nmath = M()\n"
             "abs = lambda x: 0\ndef area(r):\n    return 0\n")
    code, judge = mbpp_task(problem, problem["code"])
    assert run_python(code, judge=judge, timeout_s=20).status == "passed"
    code, judge = mbpp_task(problem, cheat)
    result = run_python(code, judge=judge, timeout_s=20)
    assert result.status == "failed", result


def test_one_program_cannot_void_the_suite():
    """The program that fakes a setup error and exits 97 gets its own verdict; every other
    verdict, passes included, stands."""
    tasks = [_task(CLOSE, CLOSE["solution"]),
             _task(CLOSE, FORGERIES["setup_marker_exit_97"]),
             _task(MAD, MAD["solution"]),
             "import sys\nsys.stderr.write('hrm-sandbox-setup-error: x\\n')\nraise SystemExit(97)\n"]
    results = execute_all(tasks, workers=2, timeout_s=20)
    assert [r.status for r in results] == ["passed", "exited", "passed", "exited"]


# --- least privilege -------------------------------------------------------------------------


def _needs(layer: str):
    iso = isolation()
    if not getattr(iso, layer):
        pytest.skip(f"this machine has no {layer} for sandboxed programs ({iso.describe()})")


@pytest.fixture
def private_catalog(tmp_path):
    """A real DuckDB catalog in a 0700 directory, as the project's data lives (root's own)."""
    duckdb = pytest.importorskip("duckdb")
    home = tmp_path / "private"
    home.mkdir(mode=0o700)
    path = home / "catalog.duckdb"
    con = duckdb.connect(str(path))
    con.execute("CREATE TABLE secrets AS SELECT 'catalog-secret-{}' AS s".format(uuid.uuid4().hex))
    con.close()
    key = home / "key"
    key.write_text("KEY-" + uuid.uuid4().hex)
    key.chmod(0o600)
    return path, key


def test_the_program_holds_no_capability_and_reads_nothing_private(private_catalog):
    _needs("separate_uid")
    catalog, key = private_catalog
    code = textwrap.dedent(f"""
        import os
        caps = [l.split()[1] for l in open("/proc/self/status") if l.startswith(("CapEff", "CapPrm", "CapBnd"))]
        assert all(int(c, 16) == 0 for c in caps), caps
        leaked = []
        for path in ("/etc/shadow", {str(catalog)!r}, {str(key)!r}, "/proc/1/cmdline", "/proc/1/environ",
                     "/proc/%d/cmdline" % os.getppid()):
            try:
                with open(path, "rb") as f:
                    leaked.append((path, f.read(200)))
            except OSError:
                pass
        others = [p for p in os.listdir("/proc") if p.isdigit() and int(p) != os.getpid()]
        print("LEAKED", leaked, "OTHERS", len(others))
        assert not leaked, leaked
    """)
    result = run_python(code, timeout_s=20, guard=False)
    assert result.status == "passed", result
    assert "KEY-" not in result.stdout + result.stderr and "catalog-secret" not in result.stdout + result.stderr
    assert "root:" not in result.stdout + result.stderr


def test_memfd_and_sysv_memory_are_bounded_and_gone():
    _needs("ipc_namespace")
    memfd = textwrap.dedent("""
        import os
        block = b"x" * (1 << 20)
        fds = [os.memfd_create("grow") for _ in range(8)]
        for fd in fds:  # 8 x 60 MiB: each under RLIMIT_FSIZE, together far over the memory limit
            for _ in range(60):
                os.write(fd, block)
        print("wrote 480 MiB")
    """)
    result = run_python(memfd, timeout_s=30, memory_mb=128, guard=False)
    expected = ("memory",) if isolation().memory_cgroup else ("error",)  # else memfd_create is refused
    assert result.status in expected, result
    assert "wrote 480 MiB" not in result.stdout
    marker = 0x4852_4D00 + (os.getpid() & 0xFF)
    sysv = textwrap.dedent(f"""
        import ctypes
        libc = ctypes.CDLL(None, use_errno=True)
        libc.shmat.restype = ctypes.c_void_p
        shmid = libc.shmget({marker}, 16 << 20, 0o1000 | 0o600)
        if shmid < 0:
            raise PermissionError(ctypes.get_errno(), "shmget refused")
        address = libc.shmat(shmid, None, 0)
        ctypes.memset(address, 1, 16 << 20)
        print("segment", shmid)
    """)
    result = run_python(sysv, timeout_s=30, memory_mb=256, guard=False)
    assert result.status in ("passed", "error"), result
    rows = Path("/proc/sysvipc/shm").read_text().splitlines()[1:]
    assert not [r for r in rows if r.split()[0] == str(marker)], "the program's SysV segment outlived it"
    if isolation().memory_cgroup:
        assert result.status == "passed", result  # 16 MiB fit, counted, and gone with the namespace
        big = sysv.replace("16 << 20", "400 << 20")
        result = run_python(big, timeout_s=30, memory_mb=128, guard=False)
        assert result.status in ("memory", "killed", "error") and "segment" not in result.stdout, result
    leftover = [d for d in _cgroup_dirs() if d.name.startswith(f"hrm-sandbox-{os.getpid()}-")]
    assert leftover == [], "a sandbox's memory cgroup was left behind"


def _cgroup_dirs() -> list[Path]:
    from trainer.eval import sandbox_cgroup

    parent = sandbox_cgroup._parent()
    return [p for p in Path(parent[0]).iterdir() if p.is_dir()] if parent else []


def test_isolation_reports_the_new_layers_here():
    iso = isolation()
    if os.geteuid() != 0:
        pytest.skip(f"not root: {iso.describe()}")
    assert iso.no_capabilities and iso.ipc_namespace and iso.processes_hidden, iso.describe()


def _task(problem: dict, completion: str):
    return humaneval_task(problem, completion)


def _judged(problem: dict, completion: str):
    code, judge = humaneval_task(problem, completion)
    return run_python(code, judge=judge, timeout_s=20)
