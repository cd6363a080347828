"""What machine this is: CPU, memory, accelerators, backends reachable, models installed.

Reading these facts never fails a run or a command: a fact that cannot be read is null (or its type's empty
value) and its reason is listed under `unreadable` (fact -> reason), e.g. a malformed $OLLAMA_HOST."""
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
    """Drop user:password from a URL so it can be printed or stored (never raises)."""
    try:
        parts = urlsplit(url if "://" in url else f"http://{url}")
        host = parts.hostname or ""
        if parts.port:
            host = f"{host}:{parts.port}"
    except ValueError:
        return "<unparseable host>"
    return urlunsplit((parts.scheme, host, parts.path, "", ""))


def _hide_credentials(raw: str) -> str:
    """A host value as it may be shown even when it cannot be parsed: anything before an '@' is hidden."""
    return f"***@{raw.rsplit('@', 1)[1]}" if "@" in raw else raw


class HostError(ValueError):
    """$OLLAMA_HOST is not a usable host[:port]; the message says what is wrong and how to fix it."""


def ollama_host() -> str:
    """The Ollama host as the official client resolves it ($OLLAMA_HOST, default 127.0.0.1:11434).
    Raises HostError for a malformed value (a port out of range, an unclosed IPv6 bracket ...)."""
    raw = os.environ.get("OLLAMA_HOST", "").strip() or DEFAULT_OLLAMA_HOST
    url = raw if "://" in raw else f"http://{raw}"
    try:
        parts = urlsplit(url)
        port = parts.port
        if not parts.hostname:
            raise ValueError("no host name")
    except ValueError as e:
        raise HostError(f"OLLAMA_HOST={_hide_credentials(raw)!r} is not a valid host[:port] ({e}): set it like "
                        f"127.0.0.1:11434, or unset it") from None
    if port is None:
        url = urlunsplit((parts.scheme, f"{parts.netloc}:11434", parts.path, "", ""))
    return url


@dataclass
class OllamaStatus:
    host: str                   # redacted
    reachable: bool
    version: str | None = None
    models: list[str] = field(default_factory=list)
    error: str | None = None


def probe_ollama(timeout_s: float = 2.0) -> OllamaStatus:
    import httpx  # a dependency of the ollama client

    try:
        host = ollama_host()
    except HostError as e:
        return OllamaStatus(_hide_credentials(os.environ.get("OLLAMA_HOST", "")), False, error=str(e))
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
    """The machine's facts; None where a fact could not be read (its reason is in `unreadable`)."""
    os: str | None
    os_release: str | None
    arch: str | None
    cpu_model: str | None
    cpu_physical: int | None
    cpu_logical: int | None
    ram_gb: float | None
    apple_silicon: bool
    torch_version: str | None
    mps_available: bool | None
    cuda_available: bool | None
    cuda_device: str | None
    llama_cpp_version: str | None
    llama_cpp_gpu_offload: bool | None
    embedded_models: dict[str, bool] | None
    ollama: OllamaStatus
    machine_class: str
    python: str = field(default_factory=platform.python_version)
    unreadable: dict[str, str] = field(default_factory=dict)   # fact -> why it could not be read (it is null)

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


class _Facts:
    """Reads facts one by one; a fact whose reader raises gets `default` and its reason in `unreadable`."""

    def __init__(self) -> None:
        self.unreadable: dict[str, str] = {}

    def __call__(self, name: str, read, default=None):
        try:
            return read()
        except Exception as e:   # noqa: BLE001 -- a fact that cannot be read is null with its reason
            msg = str(e).splitlines()[0] if str(e) else ""
            self.unreadable[name] = f"{type(e).__name__}: {msg}" if msg else type(e).__name__
            return default


def detect(probe_ollama_server: bool = True) -> SystemInfo:
    """This machine's facts. Never raises: an unreadable fact is null with its reason in `unreadable`."""
    from .backends.registry import installed_models

    fact = _Facts()
    os_name, arch = fact("os", platform.system), fact("arch", platform.machine)
    torch_v, mps, cuda, cuda_dev = fact("torch", _torch_facts, (None, None, None, None))
    llama_v, offload = fact("llama_cpp", _llama_cpp_facts, (None, None))
    logical = fact("cpu_logical", lambda: psutil.cpu_count() or 1)
    ram_gb = fact("ram_gb", lambda: round(psutil.virtual_memory().total / 2**30, 1))
    if probe_ollama_server:
        ollama = fact("ollama", probe_ollama)
    else:
        ollama = OllamaStatus(redact_url(os.environ.get("OLLAMA_HOST", "") or DEFAULT_OLLAMA_HOST), False,
                              error="not probed")
    if ollama is None:
        ollama = OllamaStatus("<unparseable host>", False, error=fact.unreadable.get("ollama"))
    elif ollama.error and ollama.error.startswith("OLLAMA_HOST="):
        fact.unreadable["ollama"] = ollama.error
    return SystemInfo(
        os=os_name, os_release=fact("os_release", platform.release), arch=arch, cpu_model=fact("cpu_model", cpu_model),
        cpu_physical=fact("cpu_physical", physical_cores), cpu_logical=logical, ram_gb=ram_gb,
        apple_silicon=(os_name == "Darwin" and arch == "arm64"),
        torch_version=torch_v, mps_available=mps, cuda_available=cuda, cuda_device=cuda_dev,
        llama_cpp_version=llama_v, llama_cpp_gpu_offload=offload,
        embedded_models=fact("embedded_models", installed_models),
        ollama=ollama,
        machine_class=fact("machine_class", lambda: machine_class(os_name or "", arch or "", logical or 1,
                                                                  ram_gb or 0.0, bool(cuda)), "unknown"),
        unreadable=fact.unreadable,
    )


def current_machine_class() -> str:
    """The budget class of this machine ('unknown' when its facts cannot be read: never raises)."""
    try:
        vm = psutil.virtual_memory()
        return machine_class(platform.system(), platform.machine(), psutil.cpu_count() or 1,
                             vm.total / 2**30, _torch_facts()[2])
    except Exception:   # noqa: BLE001 -- budgets fall back to the reference class for an unknown machine
        return "unknown"
