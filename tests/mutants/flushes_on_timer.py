# MUTANT: batches its output and flushes it every 200 ms, so a lone message waits for the timer | expect: TIMING-004
"""A threaded echo server that saves system calls by collecting output and writing it on a timer.

Throughput looks fine under a steady stream, but a client that sends one small message and
waits for its echo waits for the next tick, every time: up to 200 ms on a loopback echo that
takes microseconds. RFC 862 sends back what it receives, when it receives it.

python3 tests/mutants/flushes_on_timer.py PORT
"""

import socket
import sys
import threading
import time

FLUSH_EVERY_S = 0.2  # the bug: output waits for the timer instead of going out at once


def flusher(conn, outbox, lock, done):
    while True:
        time.sleep(FLUSH_EVERY_S)
        with lock:
            data, outbox[:] = bytes(outbox), b""
        try:
            if data:
                conn.sendall(data)
        except OSError:
            return
        if done.is_set() and not data:
            conn.close()
            return


def serve(conn):
    outbox, lock, done = bytearray(), threading.Lock(), threading.Event()
    threading.Thread(target=flusher, args=(conn, outbox, lock, done), daemon=True).start()
    try:
        while data := conn.recv(65536):
            with lock:
                outbox += data
    except OSError:
        pass
    done.set()


def main():
    with socket.create_server(("127.0.0.1", int(sys.argv[1])), backlog=128) as listener:
        while True:
            conn, _ = listener.accept()
            threading.Thread(target=serve, args=(conn,), daemon=True).start()


main()
