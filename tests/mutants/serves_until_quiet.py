# MUTANT: serves a readable client until it pauses, so one that streams without pause starves the rest | expect: CONC-006
"""A single-threaded selectors echo server that stays with a client while it keeps talking.

"Finish the conversation before turning to the next one": once a client is readable, the loop
keeps reading and echoing it (blocking, with a short timeout) until it has been quiet for a
moment. A client that streams without pausing keeps the loop for as long as it streams; new
clients wait in the backlog and quiet ones get no answer meanwhile.

python3 tests/mutants/serves_until_quiet.py PORT
"""

import selectors
import socket
import sys

QUIET_S = 2.0


def serve_until_quiet(selector, conn):
    conn.settimeout(QUIET_S)
    try:
        while data := conn.recv(65536):  # the bug: this client's pauses decide when others get a turn
            conn.sendall(data)
    except TimeoutError:
        return  # quiet for a moment: back to the others
    except OSError:
        pass
    selector.unregister(conn)
    conn.close()


def main():
    listener = socket.create_server(("127.0.0.1", int(sys.argv[1])), backlog=128)
    selector = selectors.DefaultSelector()
    selector.register(listener, selectors.EVENT_READ)
    while True:
        for key, _ in selector.select():
            if key.fileobj is listener:
                conn, _ = listener.accept()
                selector.register(conn, selectors.EVENT_READ)
            else:
                serve_until_quiet(selector, key.fileobj)


main()
