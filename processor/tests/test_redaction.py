"""Secret masking in log lines (``redaction``): the forms a value can take, the filter on the handler
(including ``logging``'s own error printout), URL credentials, connect errors without DSN text."""

from __future__ import annotations

import io
import json
import logging
from collections.abc import Iterator

import pytest

from dataflow_processor import redaction
from dataflow_processor.logging_json import JsonFormatter
from dataflow_processor.redaction import SecretFilter, connect_error, mask, redact_url, register_secrets


@pytest.fixture(autouse=True)
def _clean() -> Iterator[None]:
    redaction.forget_secrets()
    yield
    redaction.forget_secrets()


def capture() -> tuple[logging.Logger, io.StringIO]:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter("ns", "n"))
    handler.addFilter(SecretFilter())
    logger = logging.getLogger(f"test.redaction.{id(stream)}")
    logger.handlers[:] = [handler]
    logger.propagate = False
    logger.setLevel(logging.DEBUG)
    return logger, stream


def test_every_form_of_a_registered_value_is_masked() -> None:
    pem = "-----BEGIN KEY-----\nAAAABBBB\n-----END KEY-----"
    register_secrets(["postgres://u:p#ss/w%rd@db:5432/x", 'quo"te\\d', pem, "k1:9092,k2:9092"])
    text = mask("dsn postgres://u:p#ss/w%rd@db:5432/x pw p#ss/w%rd enc p%23ss%2Fw%25rd")
    assert "p#ss" not in text and "p%23ss" not in text, text
    assert mask(json.dumps('quo"te\\d')) == '"***"'
    assert mask("line AAAABBBB") == "line ***"
    assert mask("node k2:9092 down") == "node *** down"


def test_short_values_are_not_masked() -> None:
    register_secrets(["ab"])
    assert mask("abc ab") == "abc ab"


def test_url_credentials_are_masked_without_registration() -> None:
    assert mask("to http://alice:pw@host:8080/x") == "to http://***@host:8080/x"
    assert redact_url("https://alice:pw@host:8443/v1?token=t") == "https://***@host:8443/v1"
    assert redact_url("http://host:8080") == "http://host:8080"


def test_filter_masks_message_args_traceback_and_extras() -> None:
    register_secrets(["hunter2-secret"])
    logger, stream = capture()
    try:
        raise ValueError("bad hunter2-secret")
    except ValueError:
        logger.exception("failed with %s", "hunter2-secret", extra={"record": {"v": "hunter2-secret"}})
    line = stream.getvalue()
    assert "hunter2" not in line, line
    assert json.loads(line)["exception"].endswith("ValueError: bad ***")


def test_a_secret_that_is_a_common_word_leaves_the_line_readable() -> None:
    # A password "dataflow" is masked wherever it is data, and the line keeps its keys and own fields.
    register_secrets(["dataflow"])
    logger, stream = capture()
    logger.info("connected as dataflow", extra={"record": {"user": "dataflow", "n": 1}})
    line = json.loads(stream.getvalue())
    assert {"dataflow_namespace", "dataflow_name", "record"} <= set(line)
    assert line["msg"] == "connected as ***"
    assert line["record"] == {"user": "***", "n": 1}
    assert "dataflow" not in json.dumps({k: v for k, v in line.items() if k not in ("logger",)}).replace(
        "dataflow_namespace", "").replace("dataflow_name", "")


def test_logging_error_printout_is_masked(capsys: pytest.CaptureFixture[str]) -> None:
    """A record whose formatting fails is printed by ``logging`` itself ("--- Logging error ---"),
    message and arguments included: the filter has masked them before."""
    register_secrets(["hunter2-secret"])
    logger, _stream = capture()
    logger.error("two %s %s", "hunter2-secret")  # noqa: PLE1206 - one argument short, on purpose
    err = capsys.readouterr().err
    assert "hunter2" not in err


def test_connect_error_never_quotes_the_client_text() -> None:
    assert connect_error("PostgreSQL (sink)", ValueError("invalid literal for int() with base 10: 's3cr'")) == (
        "cannot connect to PostgreSQL (sink): ValueError (the details are not shown: they may quote the address)"
    )
    refused = ConnectionRefusedError(111, "Connect call failed ('10.0.0.1', 1)")
    assert connect_error("x", refused) == "cannot connect to x: ConnectionRefusedError (ECONNREFUSED)"

    class ServerSaid(Exception):
        sqlstate = "28P01"

    assert connect_error("x", ServerSaid('password authentication failed for user "u"')).endswith(
        'password authentication failed for user "u" [SQLSTATE 28P01]'
    )
