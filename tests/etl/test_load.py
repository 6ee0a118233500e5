"""Error translation of the load step (the load itself is exercised through the pipeline tests)."""

import psycopg
import pytest
from sqlalchemy import Engine

from windpipe.etl.errors import EtlError, TargetUnavailableError
from windpipe.etl.load import _target_errors


def test_ctrl_c_stays_ctrl_c_when_the_rollback_after_it_fails(target: Engine) -> None:
    # Ctrl-C lands mid-statement; the rollback on the way out then fails because the connection
    # is still busy. That is a fault of timing that cannot be produced on demand, hence raised.
    with pytest.raises(KeyboardInterrupt), _target_errors(target, "loading a day"):
        try:
            raise KeyboardInterrupt
        except KeyboardInterrupt:
            raise psycopg.ProgrammingError(
                "can't change 'autocommit' now: connection in transaction status ACTIVE"
            ) from None


def test_a_lost_connection_is_one_line_naming_the_target(target: Engine) -> None:
    with pytest.raises(TargetUnavailableError) as info, _target_errors(target, "loading a day"):
        raise psycopg.OperationalError("server closed the connection unexpectedly\n\tdetail")
    message = str(info.value)
    assert "failed while loading a day: server closed the connection unexpectedly" in message
    assert "\n" not in message


def test_a_refusal_is_an_etl_error_with_the_reason(target: Engine) -> None:
    refused = pytest.raises(EtlError, match="refused loading a day: permission denied")
    with refused, _target_errors(target, "loading a day"):
        raise psycopg.errors.InsufficientPrivilege("permission denied for table data")
