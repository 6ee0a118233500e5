"""The load step's errors and waits (the load itself is exercised through the pipeline tests)."""

import time
from datetime import datetime, timedelta

import polars as pl
import psycopg
import pytest
from sqlalchemy import Engine, text

from tests.conftest import target_rows
from windpipe.errors import EtlError, TargetUnavailableError
from windpipe.warehouse.store import _target_errors, lock_namespace, replace_window


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


def test_a_day_held_by_another_run_is_given_up_after_the_wait(target: Engine) -> None:
    day = datetime(2024, 3, 1)
    frame = pl.DataFrame(
        {"timestamp": [day], "signal": ["power_mean"], "value": [1.0]},
        schema={"timestamp": pl.Datetime("us"), "signal": pl.String, "value": pl.Float64},
    )
    replace_window(target, day, day + timedelta(days=1), frame, signals=["power_mean"])
    other = frame.with_columns(pl.lit(2.0).alias("value"))
    with target.connect() as holder:  # another run, stuck inside its transaction on that day
        holder.execute(
            text("SELECT pg_advisory_xact_lock(:ns, :day)"),
            {"ns": lock_namespace("WTG01"), "day": day.date().toordinal()},
        )
        began = time.monotonic()
        with pytest.raises(EtlError, match=r"another run held \[2024-03-01 00:00, .* over 0.5 s"):
            replace_window(
                target,
                day,
                day + timedelta(days=1),
                other,
                signals=["power_mean"],
                lock_wait=timedelta(seconds=0.5),
            )
        assert time.monotonic() - began < 5
        holder.rollback()
    values = [v for _, name, v in target_rows(target) if name == "power_mean"]
    assert values == [1.0]  # unchanged
