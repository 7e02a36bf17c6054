"""Simulator: the SSV separator switch (`--ssv-separator`, `/_sim/config` `ssv_separator`)."""

from __future__ import annotations

import csv
import io

import httpx
import pytest

from marketo_assets_tests.support.simulator import JAN, Api

FIELDS = ["id", "firstName", "company", "city", "createdAt"]


def rows(body: bytes, sep: str) -> list[list[str]]:
    return list(csv.reader(io.StringIO(body.decode(), newline=""), delimiter=sep, strict=True))


def test_ssv_separator_switch_from_cli_and_control_api(sim_factory):
    sim = sim_factory(extra_args=["--ssv-separator", "space"])
    api = Api(sim)
    jan = sim.truth(JAN, ids=True)["ids"]
    sim.update_lead(jan[0], {"firstName": "Ann Lee", "company": "a;b", "city": " x "})

    _, spaced = api.export(JAN, FIELDS, format="SSV")
    assert spaced.split(b"\n", 1)[0] == b"id firstName company city createdAt"
    got = rows(spaced, " ")
    assert all(len(r) == len(FIELDS) for r in got)
    assert got[1][:4] == [str(jan[0]), "Ann Lee", "a;b", " x "]  # spaces quoted, ';' not
    assert b'"Ann Lee"' in spaced

    assert sim.configure(ssv_separator=";")["ssv_separator"] == ";"
    _, semi = api.export(JAN, FIELDS, format="SSV")  # same request: a new file, not the old one
    assert semi.split(b"\n", 1)[0] == b"id;firstName;company;city;createdAt"
    assert rows(semi, ";") == got

    _, csv_body = api.export(JAN, FIELDS, format="CSV")  # CSV and TSV do not change
    assert rows(csv_body, ",") == got


def test_control_api_refuses_other_ssv_separators(sim_factory):
    sim = sim_factory()
    with pytest.raises(httpx.HTTPStatusError):
        sim.configure(ssv_separator=",")
    assert sim.state()["config"]["ssv_separator"] == ";"
