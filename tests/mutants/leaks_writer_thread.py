# MUTANT: the writer thread of each connection waits forever: nobody tells it the client left | expect: LEAK-001
"""The threaded echo server (tests/mutants/_kit.py) with a reader and a writer thread per
connection: at EOF the reader flushes (waits until the queue is empty) and closes, but never
sends the writer its stop sentinel, so one thread per finished connection stays blocked in
queue.get() forever.

    python3 tests/mutants/leaks_writer_thread.py PORT
"""

import queue
import socket
import threading

from _kit import READ_SIZE, ThreadedEcho


def writer(conn, pending):
    while True:
        data = pending.get()
        try:
            conn.sendall(data)
        except OSError:
            pass
        pending.task_done()


class LeaksWriterThread(ThreadedEcho):
    def serve(self, conn: socket.socket) -> None:
        pending = queue.Queue(maxsize=16)
        threading.Thread(target=writer, args=(conn, pending), daemon=True).start()
        with conn:
            try:
                while data := conn.recv(READ_SIZE):
                    pending.put(data)
            except OSError:
                pass
            pending.join()  # every echo written; the bug: no pending.put(None) to end the writer


LeaksWriterThread().main()
