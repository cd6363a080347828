"""What machine this is: CPU, memory, accelerators, backends reachable, models installed."""
from __future__ import annotations

import os
import platform
from dataclasses import asdict, dataclass, field
from functools import lru_cache
from typing import Any
from urllib.parse import urlsplit, urlunsplit

import psutil

DEFAULT_OLLAMA_HOST = "http://127.0.0.1:11434"


def redact_url(url: str) -> str:
    """Drop user:password from a URL so it can be printed or stored."""
    try:
        parts = urlsplit(url if "://" in url else f"http://{url}")
    except ValueError:
        return "<unparseable host>"
    host = parts.hostname or ""
    if parts.port:
        host = f"{host}:{parts.port}"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def ollama_host() -> str:
    """The Ollama host as the official client resolves it ($OLLAMA_HOST, default 127.0.0.1:11434)."""
    raw = os.environ.get("OLLAMA_HOST", "").strip() or DEFAULT_OLLAMA_HOST
    if "://" not in raw:
        raw = f"http://{raw}"
    parts = urlsplit(raw)
    if parts.port is None and parts.hostname:
        raw = urlunsplit((parts.scheme, f"{parts.netloc}:11434", parts.path, "", ""))
    return raw


@dataclass
class OllamaStatus:
    host: str                   # redacted
    reachable: bool
    version: str | None = None
    models: list[str] = field(default_factory=list)
    error: str | None = None


def probe_ollama(timeout_s: float = 2.0) -> OllamaStatus:
    import httpx  # a dependency of the ollama client

    host = ollama_host()
    shown = redact_url(host)
    try:
        with httpx.Client(base_url=host, timeout=timeout_s) as c:
            version = c.get("/api/version").json().get("version")
            tags = c.get("/api/tags").json().get("models", [])
        return OllamaStatus(shown, True, version, sorted(m.get("name", "") for m in tags))
    except Exception as e:  # any failure means "not reachable" here; the backend raises the detailed error
        return OllamaStatus(shown, False, error=f"{type(e).__name__}: {redact_url(str(e)) if '://' in str(e) else e}")


@dataclass
class SystemInfo:
    os: str
    os_release: str
    arch: str
    cpu_model: str
    cpu_physical: int
    cpu_logical: int
    ram_gb: float
    apple_silicon: bool
    torch_version: str | None
    mps_available: bool
    cuda_available: bool
    cuda_device: str | None
    llama_cpp_version: str | None
    llama_cpp_gpu_offload: bool | None
    embedded_models: dict[str, bool]
    ollama: OllamaStatus
    machine_class: str
    python: str = field(default_factory=platform.python_version)

    def as_dict(self) -> dict[str, Any]:
        return asdict(self)


def cpu_model() -> str:
    try:
        with open("/proc/cpuinfo") as fh:
            for line in fh:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    if platform.system() == "Darwin":
        import subprocess
        try:
            return subprocess.run(["sysctl", "-n", "machdep.cpu.brand_string"], capture_output=True, text=True,
                                  timeout=5).stdout.strip() or platform.machine()
        except (OSError, subprocess.SubprocessError):
            pass
    return platform.processor() or platform.machine()


def physical_cores() -> int:
    return psutil.cpu_count(logical=False) or psutil.cpu_count() or 1


def machine_class(os_name: str, arch: str, logical: int, ram_gb: float, cuda: bool) -> str:
    """The budget class of a machine. Apple Silicon maps to the seed's reference class."""
    if os_name == "Darwin" and arch == "arm64":
        return "apple-m1-16gb"
    if os_name == "Linux" and arch == "x86_64" and logical <= 2 and not cuda:
        return "linux-x86_64-2c"
    return f"{os_name.lower()}-{arch}-{logical}c{'-cuda' if cuda else ''}"


@lru_cache(maxsize=1)
def _torch_facts() -> tuple[str | None, bool, bool, str | None]:
    try:
        import torch
    except Exception:
        return None, False, False, None
    mps = bool(getattr(torch.backends, "mps", None) and torch.backends.mps.is_available())
    cuda = torch.cuda.is_available()
    return torch.__version__, mps, cuda, (torch.cuda.get_device_name(0) if cuda else None)


def _llama_cpp_facts() -> tuple[str | None, bool | None]:
    try:
        import llama_cpp
    except Exception:
        return None, None
    try:
        offload = bool(llama_cpp.llama_supports_gpu_offload())
    except Exception:
        offload = None
    return llama_cpp.__version__, offload


def detect(probe_ollama_server: bool = True) -> SystemInfo:
    from .backends.registry import installed_models

    vm = psutil.virtual_memory()
    os_name, arch = platform.system(), platform.machine()
    torch_v, mps, cuda, cuda_dev = _torch_facts()
    llama_v, offload = _llama_cpp_facts()
    logical = psutil.cpu_count() or 1
    ram_gb = round(vm.total / 2**30, 1)
    return SystemInfo(
        os=os_name, os_release=platform.release(), arch=arch, cpu_model=cpu_model(),
        cpu_physical=physical_cores(), cpu_logical=logical, ram_gb=ram_gb,
        apple_silicon=(os_name == "Darwin" and arch == "arm64"),
        torch_version=torch_v, mps_available=mps, cuda_available=cuda, cuda_device=cuda_dev,
        llama_cpp_version=llama_v, llama_cpp_gpu_offload=offload,
        embedded_models=installed_models(),
        ollama=probe_ollama() if probe_ollama_server else OllamaStatus(redact_url(ollama_host()), False,
                                                                      error="not probed"),
        machine_class=machine_class(os_name, arch, logical, ram_gb, cuda),
    )


def current_machine_class() -> str:
    vm = psutil.virtual_memory()
    return machine_class(platform.system(), platform.machine(), psutil.cpu_count() or 1,
                         vm.total / 2**30, _torch_facts()[2])
