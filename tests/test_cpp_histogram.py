"""The C++ client's open-loop mode and its HdrHistogram, checked against the PyPI package.

``cpp/hdr_histogram.h`` is the project's own HdrHistogram (Debian ships no C library); it is only
worth having if it interoperates. So a real open-loop run against the C++ server prints its
percentiles and a compressed histoblob, and ``hdrhistogram`` must decode the blob to the same
sample count and the same percentiles. The open-loop mode itself must check every echo, time
requests from their intended send, and say when the client could not keep up.
"""

from __future__ import annotations

import json
import socket
import subprocess
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from typing import Any

import pytest
from hdrh.histogram import HdrHistogram

from conformance.harness.build import ensure_cpp_built
from conformance.harness.servers import Address
from conformance.harness.targets import TargetSpec
from impls.table import BY_NAME

CLIENT_TIMEOUT_S = 60.0
PERCENTILES = {"p50_us": 50.0, "p90_us": 90.0, "p99_us": 99.0, "p999_us": 99.9}


@pytest.fixture(scope="module")
def client() -> str:
    return str(ensure_cpp_built() / "client")


@pytest.fixture(scope="module")
def cpp_server() -> Iterator[Address]:
    server, address = TargetSpec("cpp", implementation=BY_NAME["cpp"]).launch()
    try:
        yield address
    finally:
        server.stop()


def open_loop(client: str, address: Address, *options: str) -> subprocess.CompletedProcess[str]:
    argv = [client, "--host", address.host, "--port", str(address.port), "--open-loop", *options]
    return subprocess.run(argv, capture_output=True, text=True, timeout=CLIENT_TIMEOUT_S, check=False)


def json_run(client: str, address: Address, *options: str) -> dict[str, Any]:
    result = open_loop(client, address, "--json", *options)
    assert result.returncode == 0, result.stderr
    run: dict[str, Any] = json.loads(result.stdout)
    return run


@pytest.mark.parametrize("arrival", ["fixed", "poisson"])
def test_blob_decodes_to_the_clients_own_figures(client: str, cpp_server: Address, arrival: str) -> None:
    run = json_run(
        client, cpp_server, "--rate", "4000", "--connections", "8", "--duration", "1", "--arrival", arrival
    )
    histogram = HdrHistogram.decode(run["histogram"])
    assert histogram.get_total_count() == run["count"] == run["completed"]
    for key, percentile in PERCENTILES.items():
        assert histogram.get_value_at_percentile(percentile) == run[key], key
    assert histogram.get_max_value() == run["max_us"]
    assert run["mismatches"] == 0
    assert run["errors"] == 0


def test_every_request_of_the_window_is_echoed_and_counted(client: str, cpp_server: Address) -> None:
    run = json_run(
        client, cpp_server, "--rate", "2000", "--connections", "4", "--duration", "1", "--warmup", "0.2"
    )
    assert run["sent"] == 2000, "a fixed schedule at 2000/s puts 2000 requests in a 1 s window"
    assert run["completed"] == run["sent"]
    # Never above the target; below it when this machine is busy (kept_up then says whose fault).
    assert 0 < run["achieved_rate"] <= 2000.5


def test_blobs_of_two_runs_merge(client: str, cpp_server: Address) -> None:
    runs = [
        json_run(client, cpp_server, "--rate", "1000", "--connections", "2", "--duration", "0.5")
        for _ in range(2)
    ]
    merged = HdrHistogram.decode(runs[0]["histogram"])
    merged.decode_and_add(runs[1]["histogram"])
    assert merged.get_total_count() == runs[0]["count"] + runs[1]["count"]


def test_says_when_the_client_cannot_keep_up(client: str, cpp_server: Address) -> None:
    result = open_loop(client, cpp_server, "--rate", "20000000", "--connections", "1", "--duration", "0.3")
    assert result.returncode == 0, result.stderr
    assert "client could not keep up" in result.stdout
    assert "describe this client, not the server" in result.stdout


@contextmanager
def corrupting_echo() -> Iterator[Address]:
    """A server that echoes everything with the 100th byte flipped."""
    listener = socket.create_server(("127.0.0.1", 0))
    listener.settimeout(10)

    def serve() -> None:
        with listener, listener.accept()[0] as conn:
            conn.settimeout(10)
            seen = 0
            while chunk := conn.recv(65536):
                data = bytearray(chunk)
                if seen <= 99 < seen + len(data):
                    data[99 - seen] ^= 0xFF
                seen += len(data)
                conn.sendall(data)

    thread = threading.Thread(target=serve, daemon=True)
    thread.start()
    try:
        yield Address("127.0.0.1", listener.getsockname()[1])
    finally:
        thread.join(timeout=15)


def test_a_wrong_echo_is_a_mismatch_and_exit_status_1(client: str) -> None:
    with corrupting_echo() as address:
        result = open_loop(
            client, address, "--rate", "1000", "--connections", "1", "--duration", "0.5", "--json"
        )
    assert result.returncode == 1, result.stderr
    assert json.loads(result.stdout)["mismatches"] == 1


def test_bad_arrival_is_one_line_and_status_2(client: str, cpp_server: Address) -> None:
    result = open_loop(client, cpp_server, "--rate", "10", "--arrival", "bursty")
    assert result.returncode == 2
    assert result.stderr.strip().splitlines() == [
        "[client] error: bad value for --arrival: 'bursty' (expected fixed or poisson)"
    ]
