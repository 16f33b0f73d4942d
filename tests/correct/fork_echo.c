/* A correct echo server in the oldest style: blocking sockets, one forked child per connection.
 *
 * Flow control comes for free: a child blocked in write() does not read, so TCP holds its client
 * back. SIGPIPE is ignored (a write to a vanished client fails with EPIPE instead of killing the
 * child), SIGCHLD is ignored (the kernel reaps the children), SO_REUSEADDR lets it restart at
 * once, TCP_NODELAY sends each echo at once. At the client's EOF the child has written
 * everything, closes (FIN) and exits. It announces itself like the built-in servers and exits 0
 * on SIGTERM and SIGINT (its children too: they inherit the handler).
 *
 *     cc -O1 -o fork_echo fork_echo.c && ./fork_echo PORT [HOST]
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

static void exit_cleanly(int signum) {
    (void)signum;
    _exit(0);
}

static int write_all(int fd, const char *buf, ssize_t len) {
    while (len > 0) {
        ssize_t written = write(fd, buf, (size_t)len);
        if (written < 0 && errno == EINTR) continue;
        if (written < 0) return -1;
        buf += written;
        len -= written;
    }
    return 0;
}

static void echo(int fd) {
    static char buf[65536];
    for (;;) {
        ssize_t n = read(fd, buf, sizeof buf);
        if (n < 0 && errno == EINTR) continue;
        if (n <= 0 || write_all(fd, buf, n) < 0) break;
    }
    close(fd);
}

static int listen_on(const char *host, const char *port) {
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_PASSIVE | AI_NUMERICHOST};
    struct addrinfo *found;
    int status = getaddrinfo(host, port, &hints, &found);
    if (status != 0) {
        fprintf(stderr, "fork_echo: bad address %s port %s: %s\n", host, port, gai_strerror(status));
        exit(2);
    }
    int listener = socket(found->ai_family, SOCK_STREAM, 0);
    int one = 1;
    setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    if (listener < 0 || bind(listener, found->ai_addr, found->ai_addrlen) < 0 || listen(listener, 1024) < 0) {
        fprintf(stderr, "fork_echo: cannot listen on %s port %s: %s\n", host, port, strerror(errno));
        exit(2);
    }
    freeaddrinfo(found);
    return listener;
}

static int bound_port(int listener) {
    struct sockaddr_storage addr;
    socklen_t len = sizeof addr;
    getsockname(listener, (struct sockaddr *)&addr, &len);
    return ntohs(addr.ss_family == AF_INET6 ? ((struct sockaddr_in6 *)&addr)->sin6_port
                                            : ((struct sockaddr_in *)&addr)->sin_port);
}

int main(int argc, char **argv) {
    if (argc < 2 || argc > 3) {
        fprintf(stderr, "usage: %s PORT [HOST]\n", argv[0]);
        return 2;
    }
    const char *host = argc == 3 ? argv[2] : "127.0.0.1";
    signal(SIGPIPE, SIG_IGN);
    signal(SIGCHLD, SIG_IGN);
    signal(SIGTERM, exit_cleanly);
    signal(SIGINT, exit_cleanly);
    int listener = listen_on(host, argv[1]);
    printf(strchr(host, ':') ? "[server] listening on [%s]:%d\n" : "[server] listening on %s:%d\n", host,
           bound_port(listener));
    fflush(stdout);
    for (;;) {
        int fd = accept(listener, NULL, NULL);
        if (fd < 0) continue; /* EINTR, ECONNABORTED, EMFILE: try the next one */
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        pid_t child = fork();
        if (child == 0) {
            close(listener);
            echo(fd);
            _exit(0);
        }
        close(fd); /* the child has its own copy; if fork failed, the client sees EOF */
    }
}
