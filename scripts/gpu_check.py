#!/usr/bin/env python3
"""The CUDA path on the GPUs of this machine: built, tested and measured against PyTorch.

Run through scripts/gpu-check.sh (see `--help`). Builds a Release tree for this GPU's
architecture only, then runs each step under its own time limit, going on past a failure:

  cuda_tests        the CUDA unit tests; none may skip where there is a GPU
  nccl              the tiny curriculum on the CUDA backend, one rank per GPU over NCCL
                    (bucketed, overlapped reduction), against the CPU backend's losses
  kernels           qwen3-bench-kernels at Qwen3-0.6B's shapes: the roofline table
  train_vs_pytorch  one optimizer step of Qwen3-0.6B, ours against transformers + torch.compile
  hugging_face      transformers on the GPU against our checkpoint, and the other way round

and writes OUT/report.md, OUT/report.json and OUT/logs/STEP.log. Python standard library only:
it runs before anything is installed. Exit status: 0 when every step ran and passed (or there
is no GPU: nothing to check), 1 otherwise.
"""

import argparse
import json
import os
import platform
import re
import shlex
import shutil
import signal
import subprocess
import sys
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))


class Step:
    """One step: its time limits (full run, --quick; None: not in that run) and what it does."""

    def __init__(self, name, full_s, quick_s, what, run):
        self.name, self.full_s, self.quick_s, self.what, self.run = name, full_s, quick_s, what, run

    def limit(self, quick):
        return self.quick_s if quick else self.full_s


# Targets the steps run; building only these keeps the build inside its share of the budget.
TARGETS = ["qwen3_cuda_tests", "qwen3_unit_tests", "qwen3-train", "qwen3-prep", "qwen3-eval",
           "qwen3-bench-kernels", "qwen3-bench-step", "qwen3-dump-hf-model"]
# The unit tests of the CUDA backend that live in qwen3_unit_tests (the op-by-op parity).
UNIT_CUDA_FILTER = "*Cuda*"
BENCH_POINTS = {False: "4096x8,32768x1r", True: "4096x8"}  # full, --quick


def parse_args(argv):
    ap = argparse.ArgumentParser(prog="scripts/gpu-check.sh", description=__doc__.split("\n")[0])
    ap.add_argument("--out", help="report folder (default: gpu-check-DATE-TIME here)")
    ap.add_argument("--quick", action="store_true",
                    help="the tests and one benchmark point (4,096 x 8), within 4 minutes")
    ap.add_argument("--plan", action="store_true", help="print the steps and limits; run nothing")
    ap.add_argument("--build-dir", default=os.path.join(ROOT, "build-gpu"),
                    help="Release tree for this GPU, reused when it exists (default build-gpu)")
    ap.add_argument("--deps", metavar="PREFIX",
                    help="libraries unpacked by scripts/setup.sh --prefix PREFIX (its env.sh)")
    ap.add_argument("--debs", metavar="DEBDIR",
                    help="with --deps: unpack these .debs into PREFIX first if it has no env.sh")
    ap.add_argument("--python", default=sys.executable,
                    help="Python with PyTorch and transformers, for the comparisons")
    ap.add_argument("--steps", help="comma-separated subset of the steps, e.g. to rerun one")
    ap.add_argument("--budget", type=float,
                    help="seconds for the whole run (default 480, --quick 240); a step gets at "
                    "most what is left")
    ap.add_argument("--ranks", type=int, help="ranks for the nccl step (default: one per GPU)")
    args = ap.parse_args(argv)
    if args.debs and not args.deps:
        ap.error("--debs needs --deps PREFIX (where to unpack them)")
    if args.budget is None:
        args.budget = 240.0 if args.quick else 480.0
    return args


# ---- running commands --------------------------------------------------------------------------

def run_logged(cmd, log_path, timeout, env, cwd=ROOT):
    """Runs cmd with stdout and stderr into log_path; returns (exit status or 'timeout', seconds).

    The command gets its own process group, so that a timeout also stops mpirun's ranks and
    the compiler processes a build started.
    """
    start = time.monotonic()
    with open(log_path, "a") as log:
        log.write("$ %s\n" % " ".join(shlex.quote(c) for c in cmd))
        log.flush()
        try:
            proc = subprocess.Popen(cmd, stdout=log, stderr=subprocess.STDOUT, env=env, cwd=cwd,
                                    start_new_session=True)
        except OSError as exc:
            log.write("cannot start: %s\n" % exc)
            return 127, time.monotonic() - start
        try:
            status = proc.wait(timeout=max(timeout, 1))
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGTERM)
            try:
                proc.wait(timeout=10)
            except subprocess.TimeoutExpired:
                os.killpg(proc.pid, signal.SIGKILL)
                proc.wait()
            log.write("\n[gpu-check: stopped after %.0f s, the step's limit]\n" % timeout)
            status = "timeout"
    return status, time.monotonic() - start


def output_of(cmd, env=None, timeout=30):
    """stdout of a quick query, or None when it cannot run."""
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=timeout, env=env)
    except (OSError, subprocess.TimeoutExpired):
        return None
    return out.stdout if out.returncode == 0 else None


def tail(path, lines=15):
    try:
        with open(path, errors="replace") as fh:
            return "".join(fh.readlines()[-lines:])
    except OSError:
        return ""


# ---- the machine -------------------------------------------------------------------------------

def find_gpus():
    """(list of GPUs as dicts, None) or ([], why there is none)."""
    if os.environ.get("CUDA_VISIBLE_DEVICES", None) in ("", "-1"):
        return [], "CUDA_VISIBLE_DEVICES hides every device"
    smi = shutil.which("nvidia-smi")
    if not smi:
        return [], "nvidia-smi is not on PATH (no NVIDIA driver on this machine)"
    fields = "index,name,driver_version,compute_cap,memory.total"
    out = output_of([smi, "--query-gpu=" + fields, "--format=csv,noheader,nounits"])
    if out is None:
        return [], "nvidia-smi failed: the driver is not loaded or sees no device"
    gpus = []
    for line in out.strip().splitlines():
        parts = [p.strip() for p in line.split(",")]
        if len(parts) != 5:
            continue
        gpus.append({"index": parts[0], "name": parts[1], "driver": parts[2],
                     "compute_capability": parts[3], "memory_mib": parts[4]})
    if not gpus:
        return [], "nvidia-smi lists no GPU"
    return gpus, None


def cuda_architecture(compute_capability):
    """CMAKE_CUDA_ARCHITECTURES for one GPU: 9.0 -> 90a (Hopper's wgmma/TMA need the 'a')."""
    major, _, minor = compute_capability.partition(".")
    if not (major.isdigit() and minor.isdigit()):
        raise ValueError("compute capability '%s' is not MAJOR.MINOR" % compute_capability)
    return major + minor + ("a" if major in ("9", "10") else "")


PY_VERSIONS = r"""
import json, importlib
out = {}
for name in ("torch", "transformers"):
    try:
        out[name] = importlib.import_module(name).__version__
    except Exception as exc:
        out[name] = "not importable (%s)" % type(exc).__name__
try:
    import torch
    out["torch_cuda"] = torch.version.cuda
    out["cudnn"] = torch.backends.cudnn.version()
    out["torch_sees_gpu"] = torch.cuda.is_available()
except Exception:
    pass
try:
    import nvidia.nccl
    out["nccl_wheel"] = list(nvidia.nccl.__path__)[0]
except Exception:
    pass
try:
    import nvidia.cudnn
    out["cudnn_wheel"] = list(nvidia.cudnn.__path__)[0]
except Exception:
    pass
print(json.dumps(out))
"""


def environment(ctx):
    """GPUs, driver, toolkit, Python packages: what the report's header names."""
    info = {"host": platform.node(), "gpus": ctx.gpus, "cpus": os.cpu_count()}
    nvcc = shutil.which("nvcc", path=ctx.env.get("PATH")) or (
        "/usr/local/cuda/bin/nvcc" if os.path.exists("/usr/local/cuda/bin/nvcc") else None)
    info["nvcc"] = nvcc
    text = output_of([nvcc, "--version"]) if nvcc else None
    match = re.search(r"release ([0-9.]+)", text or "")
    info["cuda"] = match.group(1) if match else None
    versions = output_of([ctx.args.python, "-c", PY_VERSIONS], env=ctx.env, timeout=120)
    info.update(json.loads(versions) if versions else {"python": "cannot run " + ctx.args.python})
    info["python"] = ctx.args.python
    ctx.info = info
    problems = []
    if not nvcc:
        problems.append("no nvcc (CUDA toolkit) on PATH or in /usr/local/cuda")
    if not info.get("torch_sees_gpu"):
        problems.append("PyTorch under %s does not see the GPU" % ctx.args.python)
    return (not problems, "; ".join(problems) or "%d x %s, driver %s, CUDA %s, torch %s" % (
        len(ctx.gpus), ctx.gpus[0]["name"], ctx.gpus[0]["driver"], info["cuda"],
        info.get("torch")), {})


# ---- the steps ---------------------------------------------------------------------------------

def dependencies(ctx, limit):
    env_sh = os.path.join(ctx.args.deps, "env.sh")
    if os.path.exists(env_sh):
        ctx.load_prefix_env()
        return True, "using %s" % env_sh, {}
    if not ctx.args.debs:
        return False, "%s has no env.sh; pass --debs DEBDIR to unpack the packages there" % (
            ctx.args.deps), {}
    status, _ = run_logged(["bash", os.path.join(ROOT, "scripts", "setup.sh"), "--prefix",
                            ctx.args.deps, "--debs", ctx.args.debs, "--deps-only"],
                           ctx.log("dependencies"), limit, ctx.env)
    if status != 0 or not os.path.exists(env_sh):
        return False, "scripts/setup.sh --prefix failed (%s)" % status, {}
    ctx.load_prefix_env()
    return True, "unpacked %s into %s" % (ctx.args.debs, ctx.args.deps), {}


def build(ctx, limit):
    arch = cuda_architecture(ctx.gpus[0]["compute_capability"])
    build_dir = ctx.args.build_dir
    cmd = ["cmake", "-S", ROOT, "-B", build_dir, "-DCMAKE_BUILD_TYPE=Release",
           "-DCMAKE_CUDA_ARCHITECTURES=" + arch, "-DQWEN3_TEST_PYTHON=" + ctx.args.python]
    fresh = not os.path.exists(os.path.join(build_dir, "CMakeCache.txt"))
    if fresh and shutil.which("ninja", path=ctx.env.get("PATH")):
        cmd += ["-G", "Ninja"]
    if ctx.info.get("nvcc"):
        cmd.append("-DCMAKE_CUDA_COMPILER=" + ctx.info["nvcc"])
    toolkit_nccl = ctx.info.get("nvcc") and os.path.exists(
        os.path.join(os.path.dirname(os.path.dirname(ctx.info["nvcc"])), "include", "nccl.h"))
    if not toolkit_nccl and ctx.info.get("nccl_wheel"):
        cmd.append("-DQWEN3_NCCL_ROOT=" + ctx.info["nccl_wheel"])  # PyTorch's NCCL wheel
    toolkit_cudnn = ctx.info.get("nvcc") and os.path.exists(
        os.path.join(os.path.dirname(os.path.dirname(ctx.info["nvcc"])), "include", "cudnn.h"))
    if not toolkit_cudnn and ctx.info.get("cudnn_wheel"):
        cmd.append("-DQWEN3_CUDNN_ROOT=" + ctx.info["cudnn_wheel"])  # PyTorch's cuDNN wheel
    # cudnn-frontend's headers: where scripts/setup.sh put them in the checkout's build/ (carried
    # here with the tree), unless the build directory has its own.
    frontend = os.path.join(ROOT, "build", "cudnn-frontend")
    if os.path.exists(os.path.join(frontend, "include", "cudnn_frontend.h")):
        cmd.append("-DQWEN3_CUDNN_FRONTEND_ROOT=" + frontend)
    if ctx.args.deps:
        cmd.append("-DCMAKE_PREFIX_PATH=" + os.path.join(ctx.args.deps, "usr"))
    log = ctx.log("build")
    start = time.monotonic()
    status, _ = run_logged(cmd, log, limit, ctx.env)
    if status != 0:
        return False, "cmake configure failed (%s): %s" % (status, tail(log, 3).strip()), {}
    cache = open(os.path.join(build_dir, "CMakeCache.txt")).read()
    if "QWEN3_NCCL_INCLUDE_DIR:PATH=QWEN3_NCCL_INCLUDE_DIR-NOTFOUND" in cache:
        return False, ("NCCL not found: neither the toolkit nor PyTorch's nvidia-nccl wheel has "
                       "nccl.h; pass -DQWEN3_NCCL_ROOT through QWEN3_CMAKE_ARGS"), {}
    left = limit - (time.monotonic() - start)
    status, _ = run_logged(["cmake", "--build", build_dir, "-j", str(os.cpu_count()), "--target"]
                           + TARGETS, log, left, ctx.env)
    ctx.bin = os.path.join(build_dir, "bin")
    figures = {"arch": arch, "build_dir": build_dir, "reused": not fresh,
               "cudnn_attention": "cuDNN attention: ON" in open(log, errors="replace").read()}
    if status != 0:
        return False, "build failed (%s): %s" % (status, tail(log, 3).strip()), figures
    return True, "sm_%s, %s %s" % (arch, "reused" if not fresh else "new", build_dir), figures


def gtest_counts(json_path):
    """(tests, failed names, skipped names) of a --gtest_output=json file."""
    with open(json_path) as fh:
        report = json.load(fh)
    tests, failed, skipped = 0, [], []
    for suite in report.get("testsuites", []):
        for case in suite.get("testsuite", []):
            tests += 1
            name = "%s.%s" % (suite["name"], case["name"])
            if case.get("failures"):
                failed.append(name)
            elif case.get("result") == "SKIPPED" or case.get("status") == "NOTRUN":
                skipped.append(name)
    return tests, failed, skipped


def cuda_tests(ctx, limit):
    log = ctx.log("cuda_tests")
    runs = [("qwen3_cuda_tests", []), ("qwen3_unit_tests", ["--gtest_filter=" + UNIT_CUDA_FILTER])]
    totals = {"tests": 0, "failed": [], "skipped": []}
    deadline = time.monotonic() + limit
    for exe, extra in runs:
        out = os.path.join(ctx.out, "%s.json" % exe)
        status, _ = run_logged([os.path.join(ctx.bin, exe), "--gtest_output=json:" + out] + extra,
                               log, deadline - time.monotonic(), ctx.env)
        if not os.path.exists(out):
            return False, "%s did not finish (%s); see the log" % (exe, status), totals
        tests, failed, skipped = gtest_counts(out)
        totals["tests"] += tests
        totals["failed"] += failed
        totals["skipped"] += skipped
    ok = totals["tests"] > 0 and not totals["failed"] and not totals["skipped"]
    summary = "%d tests, %d failed, %d skipped" % (totals["tests"], len(totals["failed"]),
                                                   len(totals["skipped"]))
    named = (totals["failed"] + totals["skipped"])[:6]
    return ok, summary + (": " + ", ".join(named) if named else ""), totals


def nccl(ctx, limit):
    ranks = ctx.args.ranks or len(ctx.gpus)
    mpirun = shutil.which("mpirun", path=ctx.env.get("PATH")) or "mpirun"
    work = os.path.join(ctx.out, "work", "nccl")
    log = ctx.log("nccl")
    status, _ = run_logged(["bash", os.path.join(ROOT, "tests", "gpu", "train_cuda_vs_cpu.sh"),
                            ctx.bin, mpirun, ROOT, work, str(ranks)], log, limit, ctx.env)
    checkpoint = os.path.join(work, "candidate", "checkpoints", "latest")
    if os.path.exists(os.path.join(checkpoint, "model.safetensors")):
        ctx.checkpoint = checkpoint
    lines = [l[5:].strip() for l in tail(log, 40).splitlines() if l.startswith(("ok ", "FAIL"))]
    losses = next((l for l in lines if "losses" in l), "")
    failed = [l for l in tail(log, 40).splitlines() if l.startswith("FAIL")]
    summary = "%d rank(s) over NCCL; %s" % (ranks, failed[0][5:] if failed else losses)
    errors = [l.strip() for l in tail(os.path.join(work, "candidate.log"), 60).splitlines()
              if "error" in l.lower()]
    if status != 0 and errors:
        summary += "; " + errors[0][:300]
    return status == 0, summary, {"ranks": ranks}


def markdown_rows(log):
    return [l.rstrip("\n") for l in open(log, errors="replace") if l.startswith("|")]


def kernels(ctx, limit):
    """The roofline table at 4K, then attention at 4K and 32K beside PyTorch's SDPA."""
    log = ctx.log("kernels")
    out = os.path.join(ctx.out, "kernels.json")
    out_attention = os.path.join(ctx.out, "attention_vs_sdpa.json")
    status, _ = run_logged([os.path.join(ctx.bin, "qwen3-bench-kernels"), "--json", out], log,
                           limit // 2, ctx.env)
    status_attention, _ = run_logged(
        [ctx.args.python, os.path.join(ROOT, "bench", "attention_vs_sdpa.py"), "--bench-exe",
         os.path.join(ctx.bin, "qwen3-bench-kernels"), "--seqs", "4096,32768", "--iters", "5",
         "--json", out_attention], log, limit // 2, ctx.env)
    rows = markdown_rows(log)
    ctx.tables["kernels"] = rows
    with open(os.path.join(ctx.out, "kernels.md"), "w") as fh:
        fh.write("\n".join(rows) + "\n")
    figures = {name: json.load(open(path)) for name, path in
               (("kernels", out), ("attention_vs_sdpa", out_attention)) if os.path.exists(path)}
    # Rows that are neither a separator nor the header above one.
    timed = sum(1 for i, r in enumerate(rows) if not r.startswith("|---") and
                not (i + 1 < len(rows) and rows[i + 1].startswith("|---")))
    return (status == 0 and status_attention == 0, "%d rows timed (OUT/kernels.md)" % timed,
            figures)


def train_vs_pytorch(ctx, limit):
    log = ctx.log("train_vs_pytorch")
    out = os.path.join(ctx.out, "train_vs_pytorch.json")
    status, _ = run_logged([ctx.args.python, os.path.join(ROOT, "bench", "train_vs_pytorch.py"),
                            "--bench-exe", os.path.join(ctx.bin, "qwen3-bench-step"),
                            "--device", "cuda", "--points", BENCH_POINTS[ctx.args.quick],
                            "--iters", "3" if ctx.args.quick else "5", "--warmup", "2",
                            "--json", out], log, limit, ctx.env)
    ctx.tables["train_vs_pytorch"] = [l for l in open(log, errors="replace")
                                      if l.startswith("|") or "ours / PyTorch" in l]
    figures = json.load(open(out)) if os.path.exists(out) else {}
    ratios = ["%s %.2fx" % (p["point"], p["speedup"]) for p in figures.get("points", [])
              if p.get("speedup")]
    summary = ("ours / PyTorch tokens/s: " + ", ".join(ratios)) if ratios else tail(log, 2)
    return status == 0, summary.strip(), figures


def hugging_face(ctx, limit):
    if not ctx.checkpoint:
        return False, "not run: needs the checkpoint the nccl step trains on the GPU", {}
    log = ctx.log("hugging_face")
    out = os.path.join(ctx.out, "hugging_face.json")
    status, _ = run_logged([ctx.args.python, os.path.join(ROOT, "tests", "gpu", "hf_on_gpu.py"),
                            "--bin", ctx.bin, "--checkpoint", ctx.checkpoint, "--workdir",
                            os.path.join(ctx.out, "work", "hugging_face"), "--device", "cuda",
                            "--json", out], log, limit, ctx.env)
    checks = [l.strip() for l in open(log, errors="replace") if l.startswith(("ok ", "FAIL"))]
    ctx.tables["hugging_face"] = checks
    figures = json.load(open(out)) if os.path.exists(out) else {}
    failed = [c for c in checks if c.startswith("FAIL")]
    return status == 0, failed[0] if failed else "%d checks passed" % len(checks), figures


STEPS = [
    Step("dependencies", 120, 120, "unpack the build's Debian packages (only with --deps)",
         dependencies),
    Step("build", 300, 200, "CMake Release for this GPU's architecture only, all cores", build),
    Step("cuda_tests", 120, 90, "CUDA unit tests; a skip is a failure", cuda_tests),
    Step("nccl", 120, 90, "tiny curriculum on the CUDA backend over NCCL vs the CPU backend",
         nccl),
    Step("kernels", 150, None,
         "qwen3-bench-kernels: the roofline table; attention at 4K and 32K beside PyTorch's "
         "SDPA (bench/attention_vs_sdpa.py)", kernels),
    Step("train_vs_pytorch", 240, 120,
         "Qwen3-0.6B optimizer step vs transformers + torch.compile (%s; --quick %s)" % (
             BENCH_POINTS[False], BENCH_POINTS[True]), train_vs_pytorch),
    Step("hugging_face", 120, None, "transformers on our checkpoint, ours on theirs",
         hugging_face),
]


# ---- the run -----------------------------------------------------------------------------------

class Context:
    def __init__(self, args, gpus):
        self.args, self.gpus = args, gpus
        self.out = os.path.abspath(args.out or "gpu-check-" + time.strftime("%Y%m%d-%H%M%S"))
        os.makedirs(os.path.join(self.out, "logs"), exist_ok=True)
        self.env = dict(os.environ)
        if os.geteuid() == 0:  # Open MPI refuses root without these
            self.env.update(OMPI_ALLOW_RUN_AS_ROOT="1", OMPI_ALLOW_RUN_AS_ROOT_CONFIRM="1")
        self.env.setdefault("TRANSFORMERS_VERBOSITY", "error")
        self.bin = os.path.join(args.build_dir, "bin")
        self.info, self.tables, self.checkpoint = {}, {}, None

    def log(self, step):
        return os.path.join(self.out, "logs", step + ".log")

    def load_prefix_env(self):
        """The variables DIR/env.sh exports, merged into every command's environment."""
        env_sh = os.path.join(self.args.deps, "env.sh")
        out = output_of(["bash", "-c", 'source "$0" && env -0', env_sh], env=self.env)
        if out is None:
            raise RuntimeError("%s: cannot be sourced" % env_sh)
        for item in out.split("\0"):
            key, sep, value = item.partition("=")
            if sep:
                self.env[key] = value


def selected_steps(args):
    steps = [s for s in STEPS if s.limit(args.quick) is not None]
    if not args.deps:
        steps = [s for s in steps if s.name != "dependencies"]
    if args.steps:
        wanted = args.steps.split(",")
        known = {s.name for s in STEPS} | {"environment"}  # environment alone: the header
        unknown = [w for w in wanted if w not in known]
        if unknown:
            raise SystemExit("gpu-check: unknown step(s) %s; the steps are %s" % (
                ", ".join(unknown), ", ".join(sorted(known))))
        steps = [s for s in steps if s.name in wanted]
    return steps


def print_plan(args):
    steps = selected_steps(args)
    print("gpu-check%s: %d steps, %.0f s budget in all (a step gets at most its limit and what "
          "is left)" % (" --quick" if args.quick else "", len(steps) + 1, args.budget))
    print("  %-17s %5s  %s" % ("environment", "30 s", "GPUs, driver, CUDA, cuDNN, PyTorch, "
                               "transformers; stops here, exit 0, without a GPU"))
    for s in steps:
        print("  %-17s %3d s  %s" % (s.name, s.limit(args.quick), s.what))
    print("writes OUT/report.md, OUT/report.json, OUT/logs/STEP.log")


def run_steps(ctx, steps, started):
    results = []
    built = "build" in [s.name for s in steps] or os.path.isdir(ctx.bin)
    for s in steps:
        left = ctx.args.budget - (time.monotonic() - started)
        limit = min(s.limit(ctx.args.quick), left)
        print("gpu-check: %s (limit %.0f s) ..." % (s.name, limit), flush=True)
        t0 = time.monotonic()
        if limit < 5:
            ok, summary, figures = False, "not run: the time budget is spent", {}
        elif s.name != "build" and s.name != "dependencies" and not built:
            ok, summary, figures = False, "not run: the build failed", {}
        else:
            try:
                ok, summary, figures = s.run(ctx, limit)
            except Exception as exc:  # a step's own bug must not lose the others' results
                ok, summary, figures = False, "gpu-check error: %s: %s" % (
                    type(exc).__name__, exc), {}
        if s.name == "build":
            built = ok
        seconds = time.monotonic() - t0
        results.append({"step": s.name, "pass": bool(ok), "seconds": round(seconds, 1),
                        "limit_s": round(limit), "summary": summary, "figures": figures})
        print("gpu-check: %s %s in %.0f s: %s" % (s.name, "passed" if ok else "FAILED",
                                                   seconds, summary), flush=True)
    return results


def write_report(ctx, env_result, results, total):
    build = next((r for r in results if r["step"] == "build"), None)
    report = {"date": time.strftime("%Y-%m-%d %H:%M:%S %Z"), "quick": ctx.args.quick,
              "environment": ctx.info, "environment_check": env_result, "steps": results,
              "total_seconds": round(total, 1),
              "build_share": round(build["seconds"] / total, 3) if build and total else None,
              "pass": env_result["pass"] and all(r["pass"] for r in results)}
    with open(os.path.join(ctx.out, "report.json"), "w") as fh:
        json.dump(report, fh, indent=1)
    i = ctx.info
    gpu = ctx.gpus[0]
    md = ["# gpu-check%s: %s" % (" --quick" if ctx.args.quick else "",
                                 "PASS" if report["pass"] else "FAIL"), "",
          "%s, %d x %s (sm %s, %s MiB), driver %s; CUDA %s; PyTorch %s (CUDA %s, cuDNN %s); "
          "transformers %s; %s CPUs." % (report["date"], len(ctx.gpus), gpu["name"],
                                         gpu["compute_capability"], gpu["memory_mib"],
                                         gpu["driver"], i.get("cuda"), i.get("torch"),
                                         i.get("torch_cuda"), i.get("cudnn"),
                                         i.get("transformers"), i.get("cpus")), "",
          "| step | result | time (s) | limit (s) | summary |", "|---|---|---:|---:|---|"]
    md.append("| environment | %s | %.0f | 30 | %s |" % (
        "pass" if env_result["pass"] else "FAIL", env_result["seconds"], env_result["summary"]))
    for r in results:
        md.append("| %s | %s | %.0f | %d | %s |" % (r["step"], "pass" if r["pass"] else "FAIL",
                                                   r["seconds"], r["limit_s"],
                                                   r["summary"].replace("|", "/")))
    md += ["", "Total %.0f s%s." % (total, "; the build took %.0f s (%.0f%%)" % (
        build["seconds"], 100 * report["build_share"]) if build else "")]
    titles = {"kernels": "Kernels against the roofline (qwen3-bench-kernels)",
              "train_vs_pytorch": "One optimizer step of Qwen3-0.6B, ours against PyTorch",
              "hugging_face": "Hugging Face on the GPU"}
    for key, title in titles.items():
        if ctx.tables.get(key):
            md += ["", "## " + title, ""] + [l.rstrip("\n") for l in ctx.tables[key]]
    text = "\n".join(md) + "\n"
    with open(os.path.join(ctx.out, "report.md"), "w") as fh:
        fh.write(text)
    return report, text


def main(argv):
    args = parse_args(argv)
    if args.plan:
        print_plan(args)
        return 0
    steps = selected_steps(args)
    gpus, why = find_gpus()
    if not gpus:
        print("gpu-check: no GPU: %s. Nothing to check; exit 0." % why)
        return 0
    started = time.monotonic()
    ctx = Context(args, gpus)
    if args.deps and os.path.exists(os.path.join(args.deps, "env.sh")):
        ctx.load_prefix_env()  # before the environment step, so that it sees the prefix's tools
    t0 = time.monotonic()
    ok, summary, _ = environment(ctx)
    env_result = {"pass": ok, "summary": summary, "seconds": round(time.monotonic() - t0, 1)}
    print("gpu-check: environment %s: %s" % ("ok" if ok else "PROBLEM", summary), flush=True)
    results = run_steps(ctx, steps, started)
    report, text = write_report(ctx, env_result, results, time.monotonic() - started)
    print()
    print(text)
    print("gpu-check: report in %s/report.md and report.json" % ctx.out)
    return 0 if report["pass"] else 1


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
