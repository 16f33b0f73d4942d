# MUTANT: the writer thread of each connection waits forever: nobody tells it the client left | expect: LEAK-001
"""An echo server with a reader and a writer thread per connection: at EOF the reader flushes
(waits until the queue is empty) and closes, but never sends the writer its stop sentinel, so
one thread per finished connection stays blocked in queue.get() forever.

    python3 tests/mutants/leaks_writer_thread.py PORT
"""

import queue
import socket
import sys
import threading


def writer(conn, pending):
    while True:
        data = pending.get()
        try:
            conn.sendall(data)
        except OSError:
            pass
        pending.task_done()


def serve(conn):
    pending = queue.Queue(maxsize=16)
    threading.Thread(target=writer, args=(conn, pending), daemon=True).start()
    with conn:
        try:
            while data := conn.recv(65536):
                pending.put(data)
        except OSError:
            pass
        pending.join()  # every echo written; the bug: no pending.put(None) to end the writer


def main():
    with socket.create_server(("127.0.0.1", int(sys.argv[1]))) as listener:
        while True:
            conn, _ = listener.accept()
            threading.Thread(target=serve, args=(conn,), daemon=True).start()


main()
