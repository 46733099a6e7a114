"""How models are served (Settings: models folder, device, precision, RAM budget, compile
cache), one frozen object per process, built once from flags and TURBO_* variables (a flag
wins) and handed to the registry and the CLIs. Nothing else reads TURBO_* from the environment.

Every setting has a flag and a variable (Settings.OPTIONS); a command line takes the flags it
needs with add_flags() and builds its settings with parse(), which stops with a usage message
on a value that cannot work. The web app's settings (ui/app_settings.py) extend these, read the
same way."""

import argparse
import os
from collections.abc import Mapping
from dataclasses import dataclass, fields
from pathlib import Path
from typing import ClassVar

from pipelines.errors import InvalidSetting

ROOT = Path(__file__).resolve().parent.parent
PRECISIONS = ("auto", "bf16", "f16", "f32")
YES = ("1", "true", "yes", "on")
NO = ("0", "false", "no", "off")


def yes_no(value: str | None, default: bool = False, name: str = "value") -> bool:
    """The one parser of yes/no values (TURBO_* switches, HF_HUB_OFFLINE); unset or empty is
    the default, anything unknown is refused rather than guessed."""
    text = (value or "").strip().lower()
    if not text:
        return default
    if text in YES + NO:
        return text in YES
    raise InvalidSetting(f"{name} {value!r} is neither yes ({', '.join(YES)}) nor no "
                         f"({', '.join(NO)}).")


def hub_offline(environ: Mapping[str, str] = os.environ) -> bool:
    """HF_HUB_OFFLINE, read when asked (huggingface_hub reads it once, at import): the same
    answer for serving and for export."""
    return yes_no(environ.get("HF_HUB_OFFLINE"), name="HF_HUB_OFFLINE")


def on_space(environ: Mapping[str, str] = os.environ) -> bool:
    """Whether this runs as a Hugging Face Space (which sets SPACE_ID): its visitors cannot
    run commands, so messages there give none."""
    return bool(environ.get("SPACE_ID"))


@dataclass(frozen=True)
class Option:
    name: str  # the Settings field
    help: str
    type: type = str
    choices: tuple[str, ...] | None = None

    @property
    def flag(self) -> str:
        return "--" + self.name.replace("_", "-")

    @property
    def variable(self) -> str:
        return "TURBO_" + self.name.upper()


def options(*listed: Option) -> dict[str, Option]:
    return {option.name: option for option in listed}


@dataclass(frozen=True)
class Settings:
    """How models are served: what the registry, the CLIs and Ray's model workers take. The
    web app's own settings (host, share, auth, the queue, Ray) extend these in
    ui/app_settings.py. OPTIONS: a flag and a variable for every field."""

    OPTIONS: ClassVar[dict[str, Option]] = options(
        Option("device", "OpenVINO device: CPU, GPU, NPU or AUTO"),
        Option("models_dir", "exported models", Path),
        Option("ram_budget_gb", "GB of RAM for loaded models (default: 3/4 of this machine's)",
               float),
        Option("precision", "OpenVINO inference precision (auto: bf16 where the CPU has it, "
                            "else f32)", choices=PRECISIONS),
        Option("ov_cache", "the compiled parts saved in <models dir>/.ov-cache", bool),
        Option("static_shapes", "compile for the request's size; recompile when it changes",
               bool),
        Option("verbose", "show library warnings on the console (else only in the log file)",
               bool),
    )

    models_dir: Path = ROOT / "models"
    device: str = "CPU"  # OpenVINO device: CPU, GPU, NPU or AUTO
    precision: str = "auto"  # bf16 where the CPU has it, else f32
    ram_budget_gb: float | None = None  # None: 3/4 of this machine's RAM
    ov_cache: bool = True  # the compiled parts saved in <models dir>/.ov-cache
    static_shapes: bool = False  # compile for the request's size, recompile when it changes
    verbose: bool = False  # show library warnings on the console instead of only in the log

    @property
    def ram_budget(self) -> int | None:
        """Bytes, or None for the registry's default."""
        return None if self.ram_budget_gb is None else int(self.ram_budget_gb * 2**30)

    def serving(self) -> "Settings":
        """These settings as serving settings alone (what a model worker is given)."""
        return Settings(**{name: getattr(self, name) for name in SERVING})

    @classmethod
    def implied(cls, environ: Mapping[str, str], names: set[str]) -> dict:
        """Defaults the environment implies for the settings in `names` not given."""
        return {}

    def check(self) -> None:
        """Refuse settings that cannot work together, each with what to do instead."""
        if self.ram_budget_gb is not None and not self.ram_budget_gb > 0:
            raise InvalidSetting(f"--ram-budget-gb (TURBO_RAM_BUDGET_GB) must be more than 0, "
                                 f"not {self.ram_budget_gb:g}; leave it out for 3/4 of this "
                                 f"machine's RAM.")


SERVING = tuple(field.name for field in fields(Settings))


def add_flags(parser: argparse.ArgumentParser, names=None, kind: type[Settings] = Settings
              ) -> None:
    """Add these settings' flags (default: all of `kind`'s). Their defaults stay None: parse()
    tells a flag given from one left out, so that the TURBO_* variable (then the built-in
    default) applies."""
    defaults = kind()
    for name in kind.OPTIONS if names is None else names:
        option = kind.OPTIONS[name]
        help_text = f"{option.help} ({option.variable}; default {getattr(defaults, name)})"
        if option.type is bool:
            parser.add_argument(option.flag, action=argparse.BooleanOptionalAction, default=None,
                                help=help_text)
        else:
            parser.add_argument(option.flag, help=help_text, default=None,
                                choices=option.choices, metavar=name.upper())
    if names is None or "verbose" in names:
        parser.add_argument("-v", dest="verbose", action="store_const", const=True,
                            help="same as --verbose")


def parse(parser: argparse.ArgumentParser, argv: list[str] | None = None,
          environ: Mapping[str, str] = os.environ, kind: type[Settings] = Settings
          ) -> tuple[argparse.Namespace, Settings]:
    """Parse the command line; `kind` of settings from its flags, else TURBO_* variables, else
    the defaults. A value that cannot work stops here with the parser's usage message (exit
    2)."""
    args = parser.parse_args(argv)
    try:
        settings = from_flags(vars(args), environ, kind=kind)
    except InvalidSetting as e:
        parser.error(str(e))
    return args, settings


def from_flags(flags: Mapping[str, object], environ: Mapping[str, str] = os.environ,
               names=None, kind: type[Settings] = Settings) -> Settings:
    """`kind` of settings from flag values (None: not given) and the environment. Only the
    settings a command takes (`names`; default: those of `kind` in `flags`) are read, the
    others keep their defaults, so that a variable meant for another command never stops this
    one. Raises InvalidSetting."""
    names = set(flags if names is None else names) & set(kind.OPTIONS)
    values = {}
    for name in names:
        option = kind.OPTIONS[name]
        given = flags.get(name)
        raw = given if given is not None else environ.get(option.variable)
        if raw is None or raw == "":
            continue
        source = option.flag if given is not None else f"{option.flag} ({option.variable})"
        values[name] = _convert(option, raw, source)
    implied = kind.implied(environ, names - set(values))
    settings = kind(**implied, **values)
    settings.check()
    return settings


def _convert(option: Option, raw, source: str):
    if option.type is bool:
        return raw if isinstance(raw, bool) else yes_no(str(raw), name=source)
    try:
        value = option.type(raw)
    except (TypeError, ValueError):  # worded as argparse words its own
        raise InvalidSetting(f"argument {source}: invalid {option.type.__name__} value: "
                             f"{raw!r}") from None
    if option.name in ("precision", "device"):
        value = value.strip().lower() if option.name == "precision" else value.strip().upper()
    if option.choices and value not in option.choices:
        raise InvalidSetting(f"{source} {raw!r}: choose one of {', '.join(option.choices)}.")
    return value
