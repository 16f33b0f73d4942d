// server.cpp - a non-blocking, multi-threaded TCP echo server built on epoll.
//
// Concurrency model
//   N event-loop threads (--threads, default 1). Each thread owns its own
//   epoll instance *and its own listening socket*; all listeners are bound to
//   the same address with SO_REUSEPORT, so the kernel spreads incoming
//   connections across them. A connection lives its whole life on the thread
//   that accepted it, so no locks are needed anywhere: threads share nothing
//   but the configuration and one "stop" eventfd.
//
// What it teaches
//   The life of a socket, in the order this file follows it:
//   bind/listen -> announce -> accept -> echo until EOF -> close.
//   Along the way it names the classic traps: EINTR, EAGAIN, partial writes,
//   SIGPIPE, EMFILE, unbounded buffering, and dropping data at half-close.
//
// Why level-triggered epoll
//   With level triggering a socket that still has data is reported again on
//   the next epoll_wait. That lets each readiness event do a *bounded* amount
//   of work (a few reads) and move on, so one fast client cannot starve the
//   rest, without any bookkeeping about "sockets I still owe a read". Edge
//   triggering would save a few wake-ups but forces draining to EAGAIN (or
//   keeping a ready-list by hand); a missed drain there is a hung connection.
//
// Backpressure
//   Every connection has a pending-output buffer for bytes the peer has not
//   yet accepted. When it grows beyond --max-pending we stop reading from that
//   client (remove EPOLLIN) until it drains to half the bound. Memory per
//   connection is therefore bounded by about max-pending + buffer-size, no
//   matter how fast a client sends or how slowly it reads.
//
// Limits
//   One connection is pinned to one thread; SO_REUSEPORT hashes connections,
//   so it balances well with many clients but cannot rebalance a few heavy
//   ones. Linux-only (epoll, eventfd, accept4, SO_REUSEPORT). No TLS.

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>  // NOLINT(modernize-deprecated-headers): POSIX (sigset_t, sigwait), not C's <csignal>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

namespace {

using Clock = std::chrono::steady_clock;

constexpr int kMaxEvents = 256;        // epoll events fetched per wake-up
constexpr int kReadsPerEvent = 4;      // fairness: reads per readiness event
constexpr int kAcceptsPerEvent = 128;  // fairness: accepts per readiness event
constexpr auto kAcceptPause = std::chrono::milliseconds(100);  // after EMFILE

// ---------------------------------------------------------------------------
// Errors and logging
// ---------------------------------------------------------------------------

// A failure we report as one line, "[server] error: ...", and exit status 2.
struct Fatal : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// strerror() may share a static buffer between threads; the GNU strerror_r
// returns a pointer to the message and is safe to call from every loop.
std::string errno_text(int err) {
    std::array<char, 128> buf{};
    return strerror_r(err, buf.data(), buf.size());
}

// Error text always names the failing system call: "bind 127.0.0.1:5052: ...".
Fatal sys_error(const char* call, const std::string& where) {
    const int err = errno;  // read first: building strings may clobber errno
    return Fatal(std::string(call) + " " + where + ": " + errno_text(err));
}

// ---------------------------------------------------------------------------
// RAII for file descriptors
// ---------------------------------------------------------------------------

// Owns one descriptor and closes it exactly once, on every path, including
// exceptions. Move-only: copying would mean two owners and a double close.
class Fd {
public:
    Fd() = default;
    explicit Fd(int fd) noexcept : fd_(fd) {}
    Fd(Fd&& other) noexcept : fd_(std::exchange(other.fd_, -1)) {}
    Fd& operator=(Fd&& other) noexcept {
        if (this != &other) {
            reset();
            fd_ = std::exchange(other.fd_, -1);
        }
        return *this;
    }
    Fd(const Fd&) = delete;
    Fd& operator=(const Fd&) = delete;
    ~Fd() { reset(); }

    int get() const noexcept { return fd_; }

    // Trap: never retry close() on EINTR. On Linux the descriptor is gone
    // either way, and a retry could close one another thread just opened.
    void reset() noexcept {
        if (fd_ >= 0) ::close(fd_);
        fd_ = -1;
    }

private:
    int fd_ = -1;
};

// ---------------------------------------------------------------------------
// Command line
// ---------------------------------------------------------------------------

struct Config {
    std::string host = "127.0.0.1";
    uint16_t port = 5052;
    size_t buffer_size = size_t{64} * 1024;
    unsigned threads = 1;
    size_t max_pending = size_t{1024} * 1024;
    bool verbose = false;
    bool help = false;
};

constexpr const char* kUsage = R"(usage: server [PORT] [options]

A non-blocking epoll TCP echo server: every byte received is sent back.

options:
  PORT                  port to listen on (same as --port)
  --host H              address to bind, IPv4 or IPv6 (default 127.0.0.1)
  --port P              port to bind, 0 = any free port (default 5052)
  --buffer-size N       read chunk size in bytes (default 65536)
  --threads N           event-loop threads, one SO_REUSEPORT listener each (default 1)
  --max-pending BYTES   per-connection unsent-output bound; above it the
                        connection is not read until it drains (default 1048576)
  -v, --verbose         log connection open/close to stderr
  -h, --help            show this help

On start it prints "[server] listening on HOST:PORT" (IPv6 as [H]:PORT) to
stdout. SIGINT/SIGTERM stop it with exit status 0; startup errors (bad flag,
bad host, port in use) exit with 2; an event loop failing at run time, with 1.
)";

unsigned long long parse_number(std::string_view flag, std::string_view text,
                                unsigned long long lo, unsigned long long hi) {
    unsigned long long value = 0;
    const char* end = text.data() + text.size();
    const auto [ptr, ec] = std::from_chars(text.data(), end, value);
    if (ec != std::errc() || ptr != end || text.empty() || value < lo || value > hi) {
        throw Fatal("bad value for " + std::string(flag) + ": '" + std::string(text) +
                    "' (expected an integer " + std::to_string(lo) + ".." +
                    std::to_string(hi) + ")");
    }
    return value;
}

// Accepts "--flag value" and "--flag=value", plus the original "server PORT".
Config parse_args(int argc, char** argv) {
    Config cfg;
    bool seen_positional = false;
    for (int i = 1; i < argc; ++i) {
        std::string_view arg = argv[i];
        std::string_view inline_value;
        bool has_inline = false;
        if (const auto eq = arg.find('='); arg.rfind("--", 0) == 0 && eq != arg.npos) {
            inline_value = arg.substr(eq + 1);
            arg = arg.substr(0, eq);
            has_inline = true;
        }
        auto value = [&]() -> std::string_view {
            if (has_inline) return inline_value;
            if (i + 1 >= argc) throw Fatal("missing value for " + std::string(arg));
            return argv[++i];
        };
        auto flag = [&](std::string_view name) {
            if (arg != name) return false;
            if (has_inline) throw Fatal(std::string(arg) + " takes no value");
            return true;
        };

        if (flag("-h") || flag("--help")) {
            cfg.help = true;
        } else if (flag("-v") || flag("--verbose")) {
            cfg.verbose = true;
        } else if (arg == "--host") {
            cfg.host = std::string(value());
        } else if (arg == "--port") {
            cfg.port = static_cast<uint16_t>(parse_number(arg, value(), 0, 65535));
        } else if (arg == "--buffer-size") {
            cfg.buffer_size = parse_number(arg, value(), 1, 64ull << 20);
        } else if (arg == "--threads") {
            cfg.threads = static_cast<unsigned>(parse_number(arg, value(), 1, 1024));
        } else if (arg == "--max-pending") {
            cfg.max_pending = parse_number(arg, value(), 0, 1ull << 40);
        } else if (!seen_positional && !arg.empty() && arg[0] != '-') {
            cfg.port = static_cast<uint16_t>(parse_number("PORT", arg, 0, 65535));
            seen_positional = true;
        } else {
            throw Fatal("unknown argument '" + std::string(argv[i]) + "' (try --help)");
        }
    }
    return cfg;
}

// ---------------------------------------------------------------------------
// Addresses
// ---------------------------------------------------------------------------

struct Endpoint {
    sockaddr_storage addr{};
    socklen_t len = 0;

    const sockaddr* sa() const { return reinterpret_cast<const sockaddr*>(&addr); }
    int family() const { return addr.ss_family; }
};

// getaddrinfo with AI_NUMERICHOST parses both IPv4 ("127.0.0.1", "0.0.0.0")
// and IPv6 ("::1", "::") literals and never blocks on a DNS lookup.
Endpoint resolve_listen_address(const std::string& host, uint16_t port) {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_PASSIVE | AI_NUMERICHOST | AI_NUMERICSERV;
    addrinfo* found = nullptr;
    const int rc = getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &found);
    if (rc != 0) {
        throw Fatal("bad host '" + host + "': " + gai_strerror(rc) +
                    " (expected a numeric IPv4 or IPv6 address)");
    }
    const std::unique_ptr<addrinfo, decltype(&freeaddrinfo)> owner(found, freeaddrinfo);
    Endpoint ep;
    std::memcpy(&ep.addr, found->ai_addr, found->ai_addrlen);
    ep.len = found->ai_addrlen;
    return ep;
}

// "127.0.0.1:5052" or "[::1]:5052" - brackets keep the IPv6 colons apart
// from the port colon.
std::string format_endpoint(const sockaddr* sa, socklen_t len) {
    std::array<char, NI_MAXHOST> host{};
    std::array<char, NI_MAXSERV> serv{};
    if (getnameinfo(sa, len, host.data(), host.size(), serv.data(), serv.size(),
                    NI_NUMERICHOST | NI_NUMERICSERV) != 0) {
        return "?";
    }
    const bool v6 = sa->sa_family == AF_INET6;
    return (v6 ? "[" : "") + std::string(host.data()) + (v6 ? "]:" : ":") + serv.data();
}

std::string format_endpoint(const Endpoint& ep) { return format_endpoint(ep.sa(), ep.len); }

void set_port(Endpoint& ep, uint16_t port) {
    if (ep.family() == AF_INET6) {
        reinterpret_cast<sockaddr_in6*>(&ep.addr)->sin6_port = htons(port);
    } else {
        reinterpret_cast<sockaddr_in*>(&ep.addr)->sin_port = htons(port);
    }
}

// ---------------------------------------------------------------------------
// Socket helpers
// ---------------------------------------------------------------------------

// SOCK_NONBLOCK | SOCK_CLOEXEC at creation: no separate fcntl() calls, and no
// window in which a fork+exec elsewhere could inherit the descriptor.
Fd make_socket(int family, const std::string& where) {
    Fd fd(::socket(family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (fd.get() < 0) throw sys_error("socket", where);
    return fd;
}

void enable_option(int fd, int level, int name, const char* call, const std::string& where) {
    const int on = 1;
    if (::setsockopt(fd, level, name, &on, sizeof on) < 0) throw sys_error(call, where);
}

// Nagle's algorithm holds back small writes waiting for an ACK; combined with
// the peer's delayed ACKs that adds up to 40 ms to a small echo. Turn it off.
bool set_nodelay(int fd) {
    const int on = 1;
    return ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on) == 0;
}

uint16_t local_port(int fd, const std::string& where) {
    sockaddr_storage addr{};
    socklen_t len = sizeof addr;
    if (::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) < 0) {
        throw sys_error("getsockname", where);
    }
    const auto port = addr.ss_family == AF_INET6
                          ? reinterpret_cast<const sockaddr_in6*>(&addr)->sin6_port
                          : reinterpret_cast<const sockaddr_in*>(&addr)->sin_port;
    return ntohs(port);
}

// Trap: SO_REUSEPORT lets *any* socket of the same user join a port, so a
// second copy of this server would silently share the port with the first
// instead of failing. So first claim the address with a plain socket (no
// SO_REUSEPORT): its bind fails with EADDRINUSE if anybody listens there,
// and for port 0 it tells us which free port the kernel picked.
uint16_t claim_port(const Endpoint& ep) {
    const std::string where = format_endpoint(ep);
    const Fd probe = make_socket(ep.family(), where);
    // SO_REUSEADDR: a previous run's connections lingering in TIME_WAIT
    // must not keep us from restarting on the same port.
    enable_option(probe.get(), SOL_SOCKET, SO_REUSEADDR, "setsockopt(SO_REUSEADDR)", where);
    if (::bind(probe.get(), ep.sa(), ep.len) < 0) throw sys_error("bind", where);
    return local_port(probe.get(), where);
}

// bind + listen one of the per-thread listeners.
Fd make_listener(const Endpoint& ep) {
    const std::string where = format_endpoint(ep);
    Fd fd = make_socket(ep.family(), where);
    enable_option(fd.get(), SOL_SOCKET, SO_REUSEADDR, "setsockopt(SO_REUSEADDR)", where);
    enable_option(fd.get(), SOL_SOCKET, SO_REUSEPORT, "setsockopt(SO_REUSEPORT)", where);
    if (::bind(fd.get(), ep.sa(), ep.len) < 0) throw sys_error("bind", where);
    // The kernel caps the backlog at net.core.somaxconn anyway; ask for all.
    if (::listen(fd.get(), SOMAXCONN) < 0) throw sys_error("listen", where);
    return fd;
}

// A benchmark with 10k clients needs 10k descriptors; the default soft limit
// is often 1024. Raising soft up to hard needs no privilege.
void raise_fd_limit() {
    rlimit lim{};
    if (::getrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_cur < lim.rlim_max) {
        lim.rlim_cur = lim.rlim_max;
        ::setrlimit(RLIMIT_NOFILE, &lim);
    }
}

// ---------------------------------------------------------------------------
// One connection
// ---------------------------------------------------------------------------

struct Connection {
    explicit Connection(Fd socket) : fd(std::move(socket)) {}

    Fd fd;
    std::vector<char> out;      // bytes read but not yet accepted by the peer...
    size_t out_head = 0;        // ...starting at out[out_head]
    uint32_t events = EPOLLIN;  // what epoll currently watches for us
    bool peer_done = false;     // recv() returned 0: the client sent FIN
    bool throttled = false;     // backpressure: not reading until output drains
    int error = 0;              // errno that ended the connection, 0 = clean EOF
    uint64_t echoed = 0;        // bytes sent back (for --verbose)
    std::string peer;           // "ip:port", filled only with --verbose

    size_t pending() const { return out.size() - out_head; }
};

// Sends as much of data[0, len) as the kernel takes right now; `done` says
// how much. A short count is normal (the socket buffer is full) - the rest
// waits for EPOLLOUT. Returns false on a real error (ECONNRESET, EPIPE...).
//
// MSG_NOSIGNAL: writing to a connection the peer has reset raises SIGPIPE,
// whose default action kills the whole process. With the flag (and SIGPIPE
// ignored as a second line of defence) we get EPIPE instead.
bool send_some(Connection& c, const char* data, size_t len, size_t& done) {
    done = 0;
    while (done < len) {
        const ssize_t n = ::send(c.fd.get(), data + done, len - done, MSG_NOSIGNAL);
        if (n > 0) {
            done += static_cast<size_t>(n);
        } else if (n < 0 && errno == EINTR) {
            continue;  // interrupted before anything was sent: just retry
        } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            break;  // kernel buffer full: not an error, wait for EPOLLOUT
        } else {
            c.error = n < 0 ? errno : EPIPE;
            return false;
        }
    }
    c.echoed += done;
    return true;
}

// ---------------------------------------------------------------------------
// The event loop: one per thread
// ---------------------------------------------------------------------------

class EventLoop {
public:
    EventLoop(unsigned id, Fd listener, int stop_fd, const Config& cfg)
        : id_(id), cfg_(cfg), listener_(std::move(listener)), stop_fd_(stop_fd),
          inbuf_(cfg.buffer_size) {
        const std::string where = "(event loop " + std::to_string(id) + ")";
        epoll_ = Fd(::epoll_create1(EPOLL_CLOEXEC));
        if (epoll_.get() < 0) throw sys_error("epoll_create1", where);
        if (!watch_fd(EPOLL_CTL_ADD, listener_.get(), EPOLLIN) ||
            !watch_fd(EPOLL_CTL_ADD, stop_fd_, EPOLLIN)) {
            throw sys_error("epoll_ctl", where);
        }
    }

    // Runs until the stop eventfd becomes readable. Throws only on errors
    // that leave the loop unusable (epoll itself failing).
    void run() {
        std::array<epoll_event, kMaxEvents> events{};
        for (;;) {
            const int n = ::epoll_wait(epoll_.get(), events.data(), kMaxEvents, wait_timeout_ms());
            if (n < 0 && errno != EINTR) throw sys_error("epoll_wait", "(event loop)");
            for (int i = 0; i < n; ++i) {
                const int fd = events[i].data.fd;
                if (fd == stop_fd_) return;  // the destructor closes everything
                if (fd == listener_.get()) {
                    accept_clients();
                } else {
                    serve(fd, events[i].events);
                }
            }
            resume_accepting_if_due();
        }
    }

private:
    bool watch_fd(int op, int fd, uint32_t events) {
        epoll_event ev{};
        ev.events = events;
        ev.data.fd = fd;
        return ::epoll_ctl(epoll_.get(), op, fd, &ev) == 0;
    }

    // --- accept ------------------------------------------------------------

    // The listener is non-blocking, so accept until EAGAIN (bounded, for
    // fairness; level triggering reports the rest on the next round).
    void accept_clients() {
        for (int i = 0; i < kAcceptsPerEvent; ++i) {
            sockaddr_storage peer{};
            socklen_t len = sizeof peer;
            const int fd = ::accept4(listener_.get(), reinterpret_cast<sockaddr*>(&peer), &len,
                                     SOCK_NONBLOCK | SOCK_CLOEXEC);
            if (fd >= 0) {
                fd_starved_ = false;
                adopt(Fd(fd), reinterpret_cast<const sockaddr*>(&peer), len);
            } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
                return;  // backlog empty
            } else if (errno == EINTR || errno == ECONNABORTED) {
                continue;  // a client gave up while queued: nothing to do
            } else if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS ||
                       errno == ENOMEM) {
                pause_accepting(errno);
                return;
            } else {
                // accept(2) also passes on pending network errors (EPROTO,
                // ENETDOWN, EHOSTUNREACH...): they concern that one client.
                log("accept4: " + errno_text(errno));
                return;
            }
        }
    }

    // Out of descriptors. The waiting client stays in the kernel's queue, so
    // the listener stays readable and a level-triggered loop would spin at
    // 100% CPU retrying. Instead we stop watching the listener for a moment;
    // clients wait in the backlog until connections close and free
    // descriptors. (The alternative "reserve fd" trick - close a spare fd,
    // accept, close the client - turns clients away instead, and is racy
    // when several threads share one descriptor table.)
    void pause_accepting(int err) {
        if (!fd_starved_) log("accept4: " + errno_text(err) + "; pausing accepts");
        fd_starved_ = true;
        accept_paused_ = watch_fd(EPOLL_CTL_MOD, listener_.get(), 0);
        accept_resume_at_ = Clock::now() + kAcceptPause;
    }

    int wait_timeout_ms() const {
        if (!accept_paused_) return -1;
        const auto left = std::chrono::ceil<std::chrono::milliseconds>(accept_resume_at_ -
                                                                       Clock::now());
        return left.count() > 0 ? static_cast<int>(left.count()) : 0;
    }

    void resume_accepting_if_due() {
        if (accept_paused_ && Clock::now() >= accept_resume_at_) {
            accept_paused_ = !watch_fd(EPOLL_CTL_MOD, listener_.get(), EPOLLIN);
        }
    }

    void adopt(Fd fd, const sockaddr* peer, socklen_t peer_len) {
        // A failing setsockopt means the socket is already dead (e.g. reset).
        if (!set_nodelay(fd.get())) return;
        const int key = fd.get();
        auto conn = std::make_unique<Connection>(std::move(fd));
        if (!watch_fd(EPOLL_CTL_ADD, key, EPOLLIN)) {
            log("epoll_ctl: " + errno_text(errno));
            return;
        }
        if (cfg_.verbose) {
            conn->peer = format_endpoint(peer, peer_len);
            log("open  " + conn->peer);
        }
        // Indexed by descriptor number: the kernel hands out the lowest free
        // numbers, so this table stays dense and lookups are one array access.
        const auto slot = static_cast<size_t>(key);
        if (slot >= conns_.size()) conns_.resize(slot + 1);
        conns_[slot] = std::move(conn);
    }

    // --- echo --------------------------------------------------------------

    void serve(int fd, uint32_t events) {
        auto& owner = conns_[static_cast<size_t>(fd)];
        if (!pump(*owner, events)) close_connection(owner);
    }

    // One readiness event for one connection. Returns false when the
    // connection is finished (clean or not) and must be closed.
    bool pump(Connection& c, uint32_t events) {
        // EPOLLERR/EPOLLHUP are reported even when not asked for; letting
        // them drive a send or recv surfaces the actual error (or EOF).
        const uint32_t trouble = EPOLLERR | EPOLLHUP;
        if ((events & (EPOLLOUT | trouble)) && c.pending() > 0 && !flush(c)) return false;
        if ((events & (EPOLLIN | trouble)) && readable(c) && !read_and_echo(c)) return false;
        // Half-close: the client said it is done sending (FIN). Only close
        // once every byte it sent has been echoed - never drop pending data.
        if (c.peer_done && c.pending() == 0) return false;
        return update_interest(c);
    }

    bool readable(const Connection& c) const { return !c.peer_done && !c.throttled; }

    bool read_and_echo(Connection& c) {
        for (int reads = 0; reads < kReadsPerEvent && readable(c);) {
            const ssize_t n = ::recv(c.fd.get(), inbuf_.data(), inbuf_.size(), 0);
            if (n > 0) {
                ++reads;
                if (!echo(c, inbuf_.data(), static_cast<size_t>(n))) return false;
                // A short read means the socket is empty: skip the recv()
                // that would only say EAGAIN. Level triggering has our back.
                if (static_cast<size_t>(n) < inbuf_.size()) break;
            } else if (n == 0) {
                c.peer_done = true;  // EOF, i.e. the peer's FIN
            } else if (errno == EINTR) {
                continue;
            } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
                break;  // spurious wake-up or drained: not an error
            } else {
                c.error = errno;  // ECONNRESET and friends
                return false;
            }
        }
        return true;
    }

    // Hot path: when nothing is queued, send straight from the read buffer -
    // no copy, no allocation. Only what the kernel refuses is queued, behind
    // any older pending bytes so the echo stays in order.
    bool echo(Connection& c, const char* data, size_t len) {
        size_t sent = 0;
        if (c.pending() == 0 && !send_some(c, data, len, sent)) return false;
        if (sent < len) {
            queue(c, data + sent, len - sent);
            update_throttle(c);
        }
        return true;
    }

    static void queue(Connection& c, const char* data, size_t len) {
        // Reclaim the already-sent prefix once it is at least half the
        // buffer: each byte is moved O(1) times on average (amortised).
        if (c.out_head > 0 && c.out_head >= c.out.size() / 2) {
            c.out.erase(c.out.begin(), c.out.begin() + static_cast<std::ptrdiff_t>(c.out_head));
            c.out_head = 0;
        }
        c.out.insert(c.out.end(), data, data + len);
    }

    bool flush(Connection& c) {
        size_t sent = 0;
        if (!send_some(c, c.out.data() + c.out_head, c.pending(), sent)) return false;
        c.out_head += sent;
        if (c.pending() == 0) {
            c.out.clear();  // keeps capacity: the next burst needs no malloc
            c.out_head = 0;
        }
        update_throttle(c);
        return true;
    }

    // Backpressure with hysteresis: stop reading above --max-pending, resume
    // at half of it, so we don't flip epoll interest on every small write.
    void update_throttle(Connection& c) const {
        if (c.pending() > cfg_.max_pending) {
            c.throttled = true;
        } else if (c.pending() <= cfg_.max_pending / 2) {
            c.throttled = false;
        }
    }

    // Watch EPOLLOUT only while output is pending: a writable socket is
    // writable almost always, and level-triggered EPOLLOUT on an idle
    // connection would wake us in a busy loop.
    bool update_interest(Connection& c) {
        const uint32_t want = (readable(c) ? EPOLLIN : 0u) | (c.pending() > 0 ? EPOLLOUT : 0u);
        if (want == c.events) return true;
        if (!watch_fd(EPOLL_CTL_MOD, c.fd.get(), want)) {
            c.error = errno;
            return false;
        }
        c.events = want;
        return true;
    }

    // --- close -------------------------------------------------------------

    // Closing the descriptor also removes it from the epoll set (we never
    // dup() it, and CLOEXEC keeps children from holding copies). At EOF the
    // receive queue is empty, so close() sends a FIN after the queued echo
    // rather than an RST that could destroy it.
    void close_connection(std::unique_ptr<Connection>& owner) {
        if (cfg_.verbose) {
            const std::string why = owner->error ? errno_text(owner->error) : "eof";
            log("close " + owner->peer + " (" + why + ", " + std::to_string(owner->echoed) +
                " bytes echoed)");
        }
        owner.reset();
    }

    void log(const std::string& text) const {
        std::fprintf(stderr, "[server] loop %u: %s\n", id_, text.c_str());
    }

    unsigned id_;
    const Config& cfg_;
    Fd epoll_;
    Fd listener_;
    int stop_fd_;                 // shared eventfd, owned by main
    std::vector<char> inbuf_;     // one read buffer per loop, reused forever
    std::vector<std::unique_ptr<Connection>> conns_;  // indexed by fd
    bool accept_paused_ = false;  // listener temporarily unwatched (EMFILE)
    bool fd_starved_ = false;     // log EMFILE once per episode, not per retry
    Clock::time_point accept_resume_at_{};
};

// ---------------------------------------------------------------------------
// Threads and shutdown
// ---------------------------------------------------------------------------

std::atomic<bool> g_loop_failed{false};

// Block SIGINT/SIGTERM before any thread exists, so every thread inherits the
// mask and the signals stay pending until main collects them with sigwait().
// No async signal handler means no async-signal-safety trap, and no EINTR
// sprinkled through the loops. SIGPIPE is ignored for good (see send_some).
sigset_t block_stop_signals() {
    sigset_t set;
    sigemptyset(&set);
    sigaddset(&set, SIGINT);
    sigaddset(&set, SIGTERM);
    pthread_sigmask(SIG_BLOCK, &set, nullptr);
    ::signal(SIGPIPE, SIG_IGN);
    return set;
}

void wait_for_stop_signal(const sigset_t& set) {
    int sig = 0;
    while (sigwait(&set, &sig) != 0) {
        // sigwait() fails only for an invalid set; never exit by accident.
    }
}

// A thread must not let an exception escape (that is std::terminate). A
// broken loop logs, then wakes main with SIGTERM so the process stops.
void run_loop(EventLoop& loop) noexcept {
    try {
        loop.run();
    } catch (const std::exception& e) {
        std::fprintf(stderr, "[server] error: %s\n", e.what());
        g_loop_failed = true;
        ::kill(::getpid(), SIGTERM);
    }
}

// Owns the loop threads. Its destructor - on the normal path *and* during
// stack unwinding - tells every loop to stop and joins it: destroying a
// joinable std::thread would call std::terminate.
class LoopThreads {
public:
    explicit LoopThreads(int stop_fd) : stop_fd_(stop_fd) {}
    LoopThreads(const LoopThreads&) = delete;
    LoopThreads& operator=(const LoopThreads&) = delete;
    ~LoopThreads() {
        // One write makes the eventfd readable for good; every loop has it
        // in its (level-triggered) epoll set, so every loop wakes and exits.
        const uint64_t one = 1;
        while (::write(stop_fd_, &one, sizeof one) < 0 && errno == EINTR) {
        }
        for (auto& t : threads_) t.join();
    }

    void start(EventLoop& loop) { threads_.emplace_back(run_loop, std::ref(loop)); }

private:
    int stop_fd_;
    std::vector<std::thread> threads_;
};

int run_server(int argc, char** argv) {
    const Config cfg = parse_args(argc, argv);
    if (cfg.help) {
        std::fputs(kUsage, stdout);
        return 0;
    }
    const sigset_t stop_signals = block_stop_signals();
    raise_fd_limit();

    // bind/listen: claim the port, then one SO_REUSEPORT listener per loop.
    Endpoint ep = resolve_listen_address(cfg.host, cfg.port);
    set_port(ep, claim_port(ep));
    const Fd stop(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    if (stop.get() < 0) throw sys_error("eventfd", "(stop signal)");
    std::vector<std::unique_ptr<EventLoop>> loops;
    for (unsigned i = 0; i < cfg.threads; ++i) {
        loops.push_back(std::make_unique<EventLoop>(i, make_listener(ep), stop.get(), cfg));
    }

    // announce: only now, when connecting can no longer fail. Flush, because
    // stdout to a pipe is block-buffered and the harness is waiting for it.
    std::printf("[server] listening on %s\n", format_endpoint(ep).c_str());
    std::fflush(stdout);

    // accept / echo / close happen in the loops until a stop signal arrives.
    {
        LoopThreads threads(stop.get());
        for (auto& loop : loops) threads.start(*loop);
        wait_for_stop_signal(stop_signals);
    }
    return g_loop_failed ? 1 : 0;
}

}  // namespace

int main(int argc, char** argv) {
    try {
        return run_server(argc, argv);
    } catch (const std::exception& e) {
        std::fprintf(stderr, "[server] error: %s\n", e.what());
        return 2;
    }
}
