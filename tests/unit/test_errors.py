"""One root error: every parcelflow error is a ParcelflowError, and only those become one CLI line."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import sys
from pathlib import Path

import pytest

import streams
from streams.errors import ParcelflowError

NAMED = {
    "streams.settings.SettingsError",
    "streams.durations.DurationError",
    "streams.pacing.SpeedError",
    "streams.simulate.config.ConfigError",
    "streams.replay.run.ReplayFailed",
    "streams.replay.namespaces.NamespaceError",
    "streams.kafka.registry.RegistryError",
    "streams.kafka.registry.RegistryUnavailable",
    "streams.kafka.registry.SchemaRefused",
    "streams.events.InvalidEvent",
    "streams.replay.archive.ArchiveError",
    "streams.ingest.publish.FormatError",
    "streams.cli.CliError",
}


def _project_errors() -> dict[str, type[BaseException]]:
    """Every exception class defined at module level anywhere in ``streams``."""
    found: dict[str, type[BaseException]] = {}
    for module_info in pkgutil.walk_packages(streams.__path__, "streams."):
        module = importlib.import_module(module_info.name)
        for _, cls in inspect.getmembers(module, inspect.isclass):
            if issubclass(cls, BaseException) and cls.__module__ == module.__name__:
                found[f"{cls.__module__}.{cls.__qualname__}"] = cls
    return found


def test_every_error_class_of_the_project_is_a_parcelflow_error() -> None:
    errors = _project_errors()
    assert NAMED <= set(errors)  # the walk finds them all
    assert [name for name, cls in errors.items() if not issubclass(cls, ParcelflowError)] == []


def test_no_project_error_is_a_value_error() -> None:
    """A ValueError means a bug (or a library's word), never one of ours: `except ValueError` cannot swallow them."""
    assert [name for name, cls in _project_errors().items() if issubclass(cls, ValueError)] == []


def _main(monkeypatch: pytest.MonkeyPatch, *args: str) -> int | str | None:
    from streams.cli import main

    monkeypatch.setattr(sys, "argv", ["parcelflow", *args])
    with pytest.raises(SystemExit) as exited:
        main()
    return exited.value.code


def _said(capsys: pytest.CaptureFixture[str]) -> list[str]:
    """What the command printed on stderr, without the blank line a (transient) progress display leaves."""
    return [line for line in capsys.readouterr().err.splitlines() if line.strip()]


@pytest.mark.parametrize(
    ("args", "said"),
    [
        (["topics", "--retention", "a week"], "error: --retention: cannot read retention 'a week'"),
        (["replay", "list", "--bootstrap", "127.0.0.1:kafka"], "error: --bootstrap: server '127.0.0.1:kafka' needs"),
        (["replay", "run", "Not Valid", "--workers", "0", "--archive", "."], "error: replay name 'Not Valid'"),
    ],
)
def test_a_parcelflow_error_is_one_line_and_exit_status_1(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], args: list[str], said: str
) -> None:
    assert _main(monkeypatch, *args) == 1
    lines = _said(capsys)
    assert len(lines) == 1 and lines[0].startswith(said), lines


def test_a_project_error_raised_deep_inside_a_command_is_one_line(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str], tmp_path: Path
) -> None:
    import streams.replay.run

    def refuse(*_: object, **__: object) -> None:
        raise streams.replay.run.ReplayFailed("no history in that range")

    monkeypatch.setattr(streams.replay.run, "run_replay", refuse)
    assert _main(monkeypatch, "replay", "run", "ok", "--workers", "0", "--archive", str(tmp_path)) == 1
    assert _said(capsys) == ["error: no history in that range"]


def test_a_programming_error_keeps_its_traceback(
    monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    import streams.durations
    from streams.cli import main

    def broken(text: str) -> int:
        raise ValueError("a bug, not the user's input")

    monkeypatch.setattr(streams.durations, "parse_retention", broken)
    monkeypatch.setattr(sys, "argv", ["parcelflow", "topics", "--retention", "30d"])
    with pytest.raises(ValueError, match="a bug"):
        main()
    assert "error:" not in capsys.readouterr().err
