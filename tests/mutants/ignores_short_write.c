// MUTANT: a poll() loop over non-blocking sockets that ignores write()'s return value | expect: FLOW-001
/* A single-threaded C echo server: each read() is written straight back with one write() on a
 * non-blocking socket, and whatever the kernel did not take (a short write, or EAGAIN when the
 * client reads slowly) is silently dropped. The server never stops reading, so a client that
 * does not read is never held back, and loses most of its echo.
 *
 *     cc -O1 -o ignores_short_write ignores_short_write.c && ./ignores_short_write PORT
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#define MAX_FDS 4096

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s PORT\n", argv[0]);
        return 2;
    }
    signal(SIGPIPE, SIG_IGN);
    int listener = socket(AF_INET, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in addr = {.sin_family = AF_INET, .sin_port = htons(atoi(argv[1]))};
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(listener, (struct sockaddr *)&addr, sizeof addr) < 0 || listen(listener, 1024) < 0) {
        perror("bind/listen");
        return 2;
    }
    static struct pollfd fds[MAX_FDS];
    nfds_t count = 1;
    fds[0] = (struct pollfd){.fd = listener, .events = POLLIN};
    static char buf[65536];
    for (;;) {
        if (poll(fds, count, -1) < 0) continue;
        if (fds[0].revents & POLLIN) {
            int fd = accept(listener, NULL, NULL);
            if (fd >= 0 && count < MAX_FDS) {
                fcntl(fd, F_SETFL, O_NONBLOCK);
                setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                fds[count++] = (struct pollfd){.fd = fd, .events = POLLIN};
            } else if (fd >= 0) {
                close(fd);
            }
        }
        for (nfds_t i = 1; i < count; i++) {
            if (!(fds[i].revents & (POLLIN | POLLHUP | POLLERR))) continue;
            ssize_t n = read(fds[i].fd, buf, sizeof buf);
            if (n > 0) {
                write(fds[i].fd, buf, n); /* the bug: a short write or EAGAIN loses the rest */
                continue;
            }
            if (n < 0 && errno == EAGAIN) continue;
            close(fds[i].fd);
            fds[i--] = fds[--count];
        }
    }
}
