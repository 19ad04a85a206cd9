"""What a run ran on: the record that answers "did this environment change an answer?".

``environment()`` returns a JSON-serializable dict: Python, platform, CPU, the
versions of the packages whose numerics the suite checks, CUDA / cuDNN and the
devices where present, the precision settings in force, the suite's git commit
and the hypothesis example database. ``summary_lines()`` turns it into a short
console header. ``python -m crosscheck.environment`` prints it (``--summary``:
the header).

Importing this module needs the standard library only. ``environment()`` loads
torch and JAX when they are installed -- through :mod:`crosscheck.backends`, so
their numerics are fixed as the suite fixes them before anything is read -- and
never imports a framework that is not installed.
"""

from __future__ import annotations

import importlib.metadata
import importlib.util
import os
import platform
import subprocess
import sys
from pathlib import Path

#: distributions always recorded, None when absent
PACKAGES = ("numpy", "torch", "jax", "jaxlib", "hypothesis", "einops", "opt_einsum")
#: recorded only when installed (JAX's GPU plugins carry their own XLA and CUDA)
OPTIONAL_PACKAGES = ("jax-cuda12-plugin", "jax-cuda12-pjrt", "jax-cuda13-plugin",
                     "jax-cuda13-pjrt", "ml_dtypes")
REPOSITORY = Path(__file__).resolve().parent.parent


def environment(profile: str | None = None) -> dict:
    """The environment of this process as a JSON-serializable dict.

    ``profile``: the hypothesis profile whose example database to record
    (default: ``crosscheck.profiles.default_profile()``).
    """
    packages = {name: _version(name) for name in PACKAGES}
    packages.update({name: v for name in OPTIONAL_PACKAGES if (v := _version(name))})
    return {
        "python": {"version": platform.python_version(),
                   "implementation": platform.python_implementation()},
        "platform": platform.platform(),
        "cpu": {"model": cpu_model(), "cores": os.cpu_count(), "usable": _usable_cores()},
        "packages": packages,
        "torch": _torch() if _installed("torch") else None,
        "jax": _jax() if _installed("jax") else None,
        "commit": git_commit(),
        "example_database": _example_database(profile),
    }


def summary_lines(env: dict) -> list[str]:
    """A short console header: one line per topic."""
    py, cpu = env.get("python") or {}, env.get("cpu") or {}
    lines = [
        f"python {py.get('version')} ({py.get('implementation')}) on {env.get('platform')}",
        f"cpu: {cpu.get('model')}, {cpu.get('cores')} cores ({cpu.get('usable')} usable)",
        "packages: " + ", ".join(f"{k} {v or '-'}" for k, v in (env.get("packages") or {}).items()),
    ]
    torch = env.get("torch")
    if torch is None:
        lines.append("torch: not installed")
    elif "error" in torch:
        lines.append(f"torch: failed to load: {torch['error']}")
    else:
        devices = ", ".join(torch["devices"]) or "no CUDA device"
        precision = ", ".join(f"{k}={v}" for k, v in torch["precision"].items())
        lines.append(f"torch: CUDA {torch['cuda'] or '-'}, cuDNN {torch['cudnn'] or '-'}, "
                     f"{devices}; {torch['threads']} threads; {precision}")
    jax = env.get("jax")
    if jax is None:
        lines.append("jax: not installed")
    elif "error" in jax:
        lines.append(f"jax: failed to load: {jax['error']}")
    else:
        precision = ", ".join(f"{k}={v}" for k, v in jax["precision"].items())
        cuda = jax.get("cuda") or {}
        cuda_text = (f"; CUDA runtime {cuda.get('runtime')}, cuDNN {cuda.get('cudnn')}"
                     if cuda else "")
        lines.append(f"jax: backend {jax['backend']}, {', '.join(jax['devices'])}{cuda_text}; "
                     f"{precision}")
    db = env.get("example_database") or {}
    lines.append(f"commit {env.get('commit')}; example database: "
                 f"{db.get('database') or 'none'} (profile {db.get('profile')})")
    return lines


def git_commit(directory: Path = REPOSITORY) -> str:
    """``git rev-parse HEAD`` of the suite's checkout, "-dirty" appended when ``git
    status --porcelain`` lists anything; "unknown" outside a checkout or without git."""

    def git(*args: str) -> str | None:
        try:
            done = subprocess.run(["git", *args], cwd=directory, capture_output=True,
                                  text=True, timeout=20)
        except (OSError, subprocess.SubprocessError):
            return None
        return done.stdout if done.returncode == 0 else None

    top = git("rev-parse", "--show-toplevel")
    # an installed copy (site-packages) may lie inside some other checkout: not ours
    if top is None or Path(top.strip()).resolve() != Path(directory).resolve():
        return "unknown"
    head, status = git("rev-parse", "HEAD"), git("status", "--porcelain")
    if not head or status is None:
        return "unknown"
    return head.strip() + ("-dirty" if status.strip() else "")


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as f:
            for line in f:
                if line.lower().startswith(("model name", "hardware", "cpu model")):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    if sys.platform == "darwin":
        try:
            return subprocess.run(["sysctl", "-n", "machdep.cpu.brand_string"], text=True,
                                  capture_output=True, timeout=5).stdout.strip() or "unknown"
        except (OSError, subprocess.SubprocessError):
            pass
    return platform.processor() or platform.machine() or "unknown"


def _usable_cores() -> int | None:
    try:
        return len(os.sched_getaffinity(0))
    except (AttributeError, OSError):
        return os.cpu_count()


def _installed(module: str) -> bool:
    try:
        return importlib.util.find_spec(module) is not None
    except (ImportError, ValueError):
        return False


def _version(distribution: str) -> str | None:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def _short(e: BaseException) -> str:
    text = str(e).strip().splitlines()
    return f"{type(e).__name__}: {text[0][:160] if text else ''}"


def _torch() -> dict:
    from crosscheck.backends import load_torch

    try:
        torch = load_torch()
        cuda = torch.cuda.is_available()
        info = {
            "cuda": torch.version.cuda,
            "cudnn": torch.backends.cudnn.version() if torch.backends.cudnn.is_available() else None,
            "devices": [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
            if cuda else [],
            "threads": torch.get_num_threads(),
        }
    except Exception as e:  # noqa: BLE001 - a broken install is recorded, not fatal
        return {"error": _short(e)}
    precision = {}
    if hasattr(torch.backends.cuda.matmul, "fp32_precision"):
        # the new API; reading the legacy cudnn.allow_tf32 after it raises in torch >= 2.9
        names = ("cuda.matmul.fp32_precision", "cudnn.conv.fp32_precision")
    else:
        names = ("cuda.matmul.allow_tf32", "cudnn.allow_tf32")
    for name in names:
        obj = torch.backends
        try:
            for part in name.split("."):
                obj = getattr(obj, part)
            precision[name] = obj
        except Exception as e:  # noqa: BLE001
            precision[name] = f"unreadable ({_short(e)})"
    precision["float32_matmul_precision"] = torch.get_float32_matmul_precision()
    info["precision"] = precision
    return info


def _jax() -> dict:
    from crosscheck.backends import load_jax

    try:
        jax = load_jax()
        devices = jax.devices()
        kinds: dict[str, int] = {}
        for d in devices:
            kinds[f"{d.platform}: {d.device_kind}"] = kinds.get(f"{d.platform}: {d.device_kind}", 0) + 1
        return {
            "backend": jax.default_backend(),
            "devices": [f"{k} x{n}" for k, n in kinds.items()],
            "platform_version": _try(lambda: devices[0].client.platform_version),
            "cuda": _jax_cuda(),
            "precision": {
                "jax_default_matmul_precision": jax.config.jax_default_matmul_precision,
                "jax_enable_x64": bool(jax.config.jax_enable_x64),
            },
        }
    except Exception as e:  # noqa: BLE001
        return {"error": _short(e)}


def _try(read):
    try:
        return read()
    except Exception:  # noqa: BLE001 - a private attribute that moved: recorded as unknown
        return None


def _jax_cuda() -> dict | None:
    """CUDA runtime and cuDNN versions that JAX's CUDA plugin loaded; None without it."""
    versions = _try(lambda: importlib.import_module("jax._src.lib").cuda_versions)
    if versions is None:
        return None
    return {"runtime": _try(versions.cuda_runtime_get_version),
            "cudnn": _try(versions.cudnn_get_version)}


def _example_database(profile: str | None) -> dict:
    if not _installed("hypothesis"):
        return {"profile": profile, "database": None}
    from crosscheck import profiles

    profile = profile or profiles.default_profile()
    return {"profile": profile, "database": profiles.describe(profiles.database_setting(profile))}


def main(argv: list[str] | None = None) -> int:
    import argparse
    import json

    p = argparse.ArgumentParser(prog="python -m crosscheck.environment",
                                description="Print the environment record of this machine.")
    p.add_argument("--summary", action="store_true", help="the short console header, not JSON")
    p.add_argument("--profile", default=None, help="hypothesis profile whose database to record")
    args = p.parse_args(argv)
    env = environment(args.profile)
    print("\n".join(summary_lines(env)) if args.summary else json.dumps(env, indent=1))
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
