"""The command line: validate and preview (no servers needed), argument handling."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from dataflow_processor.cli import main, parse_args

ROOT = Path(__file__).parent.parent
EXAMPLE = ROOT / "examples" / "kafka-to-postgres.yaml"
RECORDS = ROOT / "examples" / "records.jsonl"


def test_run_is_the_default_command() -> None:
    args = parse_args(["--spec-path=/etc/dataflow/spec.json", "--namespace", "shop", "--name", "orders"])
    assert (args.command, args.spec_path, args.namespace, args.name) == (
        "run",
        "/etc/dataflow/spec.json",
        "shop",
        "orders",
    )
    assert args.health_port == 9090


def test_validate_accepts_the_example(capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["validate", str(EXAMPLE)]) == 0
    assert "valid" in capsys.readouterr().out


def test_validate_names_bad_fields(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(
        EXAMPLE.read_text().replace("consumerGroup", "consumerGrup").replace("$.status == 'paid'", "$.status ==")
    )
    assert main(["validate", str(bad)]) == 1
    err = capsys.readouterr().err
    # Worded as the API server words it (strict field validation).
    assert f'{bad}: unknown field "spec.source.kafka.consumerGrup"' in err


def test_validate_applies_the_admission_policy(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(EXAMPLE.read_text().replace("$.status == 'paid'", "$.status =="))
    assert main(["validate", str(bad)]) == 1
    assert "spec.transformations[*].filter.condition: not a valid condition" in capsys.readouterr().err


def test_validate_compiles_cel_conditions(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(EXAMPLE.read_text().replace("$.status == 'paid'", "record.amount >"))
    assert main(["validate", str(bad)]) == 1
    assert "spec.transformations[1].filter.condition: " in capsys.readouterr().err


def test_validate_reports_every_file(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    bad = tmp_path / "bad.yaml"
    bad.write_text(EXAMPLE.read_text().replace("table: orders", "tabel: x"))
    assert main(["validate", str(EXAMPLE), str(bad)]) == 1
    captured = capsys.readouterr()
    assert f"{EXAMPLE}: valid" in captured.out
    assert f'{bad}: unknown field "spec.sink.postgresql.tabel"' in captured.err


def test_run_exits_1_on_invalid_spec(tmp_path: Path) -> None:
    spec = tmp_path / "spec.json"
    spec.write_text(json.dumps({"source": {"type": "kafka"}}))
    assert (
        main(["--spec-path", str(spec), "--namespace", "n", "--name", "x", "--secrets-path", str(tmp_path / "none")])
        == 1
    )


def test_preview_on_the_example_prints_what_each_sink_gets() -> None:
    env = {**os.environ, "PYTHONPATH": str(ROOT / "src")}
    result = subprocess.run(
        [sys.executable, "-m", "dataflow_processor", "preview", "--spec-path", str(EXAMPLE)],
        input=RECORDS.read_bytes(),
        capture_output=True,
        env=env,
        timeout=60,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    lines = [json.loads(line) for line in result.stdout.splitlines()]
    to_sink = [line for line in lines if line["sink"] == "sink"]
    to_errors = [line for line in lines if line["sink"] == "errors"]
    assert [line["value"]["id"] for line in to_sink] == [1, 3]  # only the paid ones
    assert all(line["type"] == "postgresql" and "ingested_at" in line["value"] for line in to_sink)
    assert len(to_errors) == 1 and to_errors[0]["type"] == "kafka"
    assert to_errors[0]["value"]["original_message"] == {"original_data": "this line is not JSON"}
    assert to_errors[0]["value"]["error"]["stage"] == "parse"


def test_preview_shows_routes_and_failures_without_errors_sink(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsysbinary: pytest.CaptureFixture[bytes]
) -> None:
    spec = tmp_path / "spec.yaml"
    spec.write_text("""
source: {type: kafka, config: {brokers: [k:9092], topic: t}}
sink: {type: postgresql, config: {connectionString: "postgres://x", table: t}}
transformations:
  - type: router
    router: {routes: [{condition: "$.kind == 'a'", sink: {type: kafka, kafka: {brokers: [k:9092], topic: a}}}]}
""")
    records = tmp_path / "in.jsonl"
    records.write_bytes(b'{"kind": "a"}\n{"kind": "b"}\n[1]\n')
    with records.open("rb") as stdin:
        monkeypatch.setattr(sys, "stdin", type("S", (), {"buffer": stdin})())
        assert main(["preview", "--spec-path", str(spec)]) == 0
    lines = [json.loads(line) for line in capsysbinary.readouterr().out.splitlines()]
    assert [(line["sink"], line.get("condition")) for line in lines] == [
        ("sink", None),
        ("route:0", "$.kind == 'a'"),
        ("errors", None),
    ]
    assert lines[2]["type"].startswith("log")


# ---------------------------------------------------------------------------- unreadable spec files


def _laughs() -> str:
    """A YAML alias bomb (billion laughs): 9 levels of 9 aliases is 9⁹ strings once expanded."""
    lines = ["x-lol:", '  a: &a ["lol","lol","lol","lol","lol","lol","lol","lol","lol"]']
    for prev, name in zip("abcdefgh", "bcdefghi", strict=True):
        lines.append(f"  {name}: &{name} [{','.join(['*' + prev] * 9)}]")
    return "\n".join(lines) + "\n" + EXAMPLE.read_text().replace("spec:\n", "spec:\n  nodeSelector: {x: *i}\n", 1)


UNREADABLE = {
    "missing": (None, "cannot read the file: No such file or directory"),
    "deep-json": (b"[" * 100_000 + b"]" * 100_000, "nested too deeply to parse"),
    "deep-object": (
        b'{"spec": ' + b'{"a": ' * 500 + b"1" + b"}" * 501,
        "nested more than 100 levels deep at .spec.a.a",
    ),
    "not-utf8": (b"spec:\n  source: {type: kafka}\n  x: '\xff\xfe'\n", "not UTF-8 text (byte 0xff at offset 36)"),
    "alias-bomb": (_laughs().encode(), "the document holds more than 100000 values (YAML aliases count"),
}


@pytest.mark.timeout(60)
@pytest.mark.parametrize("command", ["validate", "preview", "run"])
@pytest.mark.parametrize("case", sorted(UNREADABLE))
def test_an_unreadable_spec_file_is_one_line_naming_it(
    case: str, command: str, tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    content, message = UNREADABLE[case]
    path = tmp_path / f"{case}.yaml"
    if content is not None:
        path.write_bytes(content)
    if command == "validate":
        argv = ["validate", str(path)]
    elif command == "preview":
        monkeypatch.setattr(sys, "stdin", type("S", (), {"buffer": type("B", (), {"read": lambda self: b"{}"})()})())
        argv = ["preview", "--spec-path", str(path)]
    else:
        argv = ["run", "--spec-path", str(path), "--namespace", "n", "--name", "x", "--health-port", "0"]
        argv += ["--secrets-path", str(tmp_path / "none")]
    assert main(argv) == 1
    err = capsys.readouterr().err
    lines = err.strip().splitlines()
    assert len(lines) == 1, err
    if command == "run":  # a JSON log line
        msg = json.loads(lines[0])["msg"]
        assert msg.startswith("cannot start: ") and f"{path}: {message}" in msg, msg
    else:
        assert lines[0].startswith(f"{path}: "), err
        assert message in lines[0]
    assert "Traceback" not in err
