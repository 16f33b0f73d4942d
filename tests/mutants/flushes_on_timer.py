# MUTANT: batches its output and flushes it every 200 ms, so a lone message waits for the timer | expect: TIMING-004
"""The threaded echo server (tests/mutants/_kit.py) saving system calls by collecting output and
writing it on a timer.

Throughput looks fine under a steady stream, but a client that sends one small message and
waits for its echo waits for the next tick, every time: up to 200 ms on a loopback echo that
takes microseconds. RFC 862 sends back what it receives, when it receives it.

    python3 tests/mutants/flushes_on_timer.py PORT
"""

import socket
import threading
import time

from _kit import READ_SIZE, ThreadedEcho

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


class FlushesOnTimer(ThreadedEcho):
    def serve(self, conn: socket.socket) -> None:
        outbox, lock, done = bytearray(), threading.Lock(), threading.Event()
        threading.Thread(target=flusher, args=(conn, outbox, lock, done), daemon=True).start()
        try:
            while data := conn.recv(READ_SIZE):
                with lock:
                    outbox += data
        except OSError:
            pass
        done.set()


FlushesOnTimer().main()
