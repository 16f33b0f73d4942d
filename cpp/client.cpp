// client.cpp - TCP echo client: one message, N timed round trips, a stream,
// a load test, or a TLS handshake benchmark; over plain TCP or TLS (--tls).
//
// Concurrency model
//   Single and --count modes use one connection and one thread: send a
//   message, read its echo back, repeat. --stream also uses one connection,
//   writing and reading at the same time until every byte is back. --load
//   opens many connections and drives them all from one epoll loop per thread
//   (--threads), each connection keeping exactly one message in flight.
//   --handshakes opens N connections one after another, each a fresh TCP
//   connect and a full TLS handshake, one echo, then close_notify and close.
//
// What it teaches
//   The client side of a socket's life: resolve -> connect -> round trips ->
//   close. TCP is a byte stream, not a message queue: one send() may accept
//   only part of a message (partial write) and one recv() may return any
//   slice of the echo (short read), so a "round trip" means: keep sending
//   until the whole message is out, keep reading until the whole message is
//   back. A blocking client that sends *everything* before reading anything
//   deadlocks on large messages - the server stops reading once its own
//   buffers are full of echo we are not reading - so sending and receiving
//   are interleaved with poll() on a non-blocking socket.
//
// TLS (OpenSSL 3, built with -DECHO_WITH_OPENSSL=1)
//   Every mode runs over a Link: a socket, plus an SSL object with --tls. Its
//   send/recv/handshake/end_output calls never block; like send() and recv()
//   they say "try again when readable" or "when writable" - but over TLS
//   either direction can need either: SSL_read may have to write (a key
//   update), SSL_write may have to read, and the handshake alternates. So the
//   loops wait for what the *last call asked for* (WANT_READ -> POLLIN,
//   WANT_WRITE -> POLLOUT), not for what the caller is trying to do. Two more
//   traps: decrypted bytes can sit inside OpenSSL where poll() cannot see them
//   (SSL_has_pending), and a retried SSL_write must get the same bytes again.
//   The certificate is checked against --host (a name or an IP address);
//   a connection ends with our close_notify, the TLS "no more data" that
//   tells a clean end from a truncation (a TCP FIN anyone can forge). The RTT
//   never includes the handshake; the handshake is timed on its own (TLS
//   alone in single/count/stream modes; TCP connect + TLS in --handshakes).
//   No session resumption: one fresh SSL per connection, no tickets, so each
//   handshake is a full one.
//
// Limits
//   Latencies include this process's own scheduling; in load mode one thread
//   serves many connections, so use --threads when the client saturates a
//   core. Percentiles come from a log-linear histogram (0.1% resolution).

#include <arpa/inet.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>  // NOLINT(modernize-deprecated-headers): POSIX (SIGPIPE), not C's <csignal>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/timerfd.h>
#include <unistd.h>

// CMake defines ECHO_WITH_OPENSSL=1 when it finds OpenSSL 3 (ECHO_TLS=ON); without
// it the TLS flags still parse, and --tls says the build has no TLS.
#ifndef ECHO_WITH_OPENSSL
#define ECHO_WITH_OPENSSL 0
#endif
#if ECHO_WITH_OPENSSL
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509.h>
#endif

#include <algorithm>
#include <array>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <cmath>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <deque>
#include <exception>
#include <memory>
#include <random>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

#include "hdr_histogram.h"
#include "net.h"

namespace {

using echo::Fatal;
using echo::Fd;
using echo::parse_number;
using echo::raise_fd_limit;
using echo::set_nodelay;
using echo::sys_error;
using echo::errno_text;
#if ECHO_WITH_OPENSSL
using echo::SslCtxPtr;
using echo::SslPtr;
#endif

using Clock = std::chrono::steady_clock;

// Message i is the window pool[i % kPoolSlack, + size) of one random pool: a
// stale or duplicated echo never matches, and nothing is generated per trip.
constexpr size_t kPoolSlack = 251;
constexpr int kMaxEvents = 1024;
constexpr auto kStallScanEvery = std::chrono::milliseconds(250);
constexpr size_t kStreamReadSize = size_t{256} * 1024;  // --stream: least bytes per recv()

// ---------------------------------------------------------------------------
// Errors
// ---------------------------------------------------------------------------

// The echo differed from what we sent; exit status 1.
struct Mismatch : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// ---------------------------------------------------------------------------
// Command line
// ---------------------------------------------------------------------------

struct Options {
    std::string host = "127.0.0.1";
    uint16_t port = 5052;
    std::string message = "Hello from C++!";
    uint64_t count = 1;
    size_t size = 0;  // 0: send --message; otherwise random payload of this size
    bool json = false;
    bool load = false;
    bool open_loop = false;
    double rate = 1000;     // --open-loop: requests/s over all connections
    bool poisson = false;   // --arrival poisson (default: fixed)
    double start_at = 0;    // --start-at: Unix time of the first send; 0: at once
    uint64_t seed = 0;      // --seed: of the poisson gaps (agents of one run take different ones)
    uint64_t stream = 0;  // --stream BYTES; 0: not a stream
    uint64_t handshakes = 0;  // --handshakes N; 0: not that mode
    size_t chunk = size_t{64} * 1024;
    size_t connections = 100;
    double duration_s = 5.0;
    double warmup_s = 0.0;
    unsigned threads = 1;
    double timeout_s = 10.0;
    std::string cafile;  // empty: the system's trust store
    bool tls = false;
    bool insecure = false;
    bool help = false;
};

constexpr const char* kUsage = R"(usage: client [HOST [PORT [MESSAGE]]] [options]

TCP echo client, plain or TLS (--tls).

single message (default):
  prints what was sent and received (Python bytes repr) and the round-trip time
  --host H          server address or name, IPv4 or IPv6 (default 127.0.0.1)
  --port P          server port (default 5052)
  --message M       message to send (default "Hello from C++!")

timed round trips on one connection:
  --count N         number of round trips (default 1)
  --size BYTES      random payload of this size instead of --message
  --json            print one JSON object instead of text
                    Prints latency min/p50/p95/p99/max in ms and throughput,
                    where MB/s = (count * size) / total seconds / 1e6
                    (echoed payload bytes, counted once, decimal megabytes).

bulk stream on one connection (always prints one JSON object):
  --stream BYTES    send BYTES of a pseudo-random stream while reading the echo,
                    then shut down the sending side and read until EOF; every
                    byte is checked. MB/s = BYTES / total seconds / 1e6.
  --chunk BYTES     bytes per send() (default 65536); each recv() asks for
                    at least 256 KiB, so reading costs as few calls as it can

load test (always prints one JSON object):
  --load            open many connections, one message in flight on each
  --connections N   number of connections (default 100)
  --duration S      measured seconds (default 5)
  --warmup S        unmeasured seconds before that (default 0)
  --size BYTES      message size (default 64)
  --threads T       split the connections over T epoll threads (default 1)

open-loop load test (coordinated-omission-free; plain TCP):
  --open-loop       send on a schedule, not when the last echo is back: a
                    total --rate over --connections (default 100), several
                    requests in flight per connection if the server lags;
                    each is timed from its *intended* send time and every
                    echo is checked. Prints the achieved rate beside the
                    target, latency p50/p90/p99/p99.9/max in microseconds,
                    and says when the client itself could not keep up
                    (its hand-over lagged the schedule by > 1 ms at p99)
  --rate R          target requests per second, all connections together
  --arrival A       fixed (evenly spaced, default) or poisson (exponential gaps)
  --duration S, --warmup S, --size BYTES (default 64), --threads T: as --load
  --start-at T      wait until Unix time T (seconds) before the first send
  --seed N          seed of the poisson gaps (default 0); agents of one
                    distributed run take different seeds, so their arrivals
                    are independent
  --json            one JSON object, with the latency HdrHistogram as a
                    compressed base64 histoblob ("histogram"; microseconds,
                    1 us..60 s, 3 significant digits)

TLS (the modes above but --open-loop; needs a build with OpenSSL):
  --tls             speak TLS 1.2 or 1.3; prints the version, the cipher and
                    the handshake time (TLS alone, after the TCP connect)
                    besides the RTT, which never includes the handshake
                    (JSON: "tls_version", "cipher", "handshake_ms"). --load:
                    every connection handshakes (all at once, in the epoll
                    loop) before its first message; adds errors.handshake,
                    "handshakes" (completed) and "handshake_ms" mean/p50/p95/
                    p99/max, each from the loop's start to that handshake's end
  --cafile FILE     trust the CA certificate(s) in FILE (PEM), not the system's
  --insecure        do not verify the server's certificate (says so on stderr)
                    Without --insecure the certificate must name --host (a DNS
                    name, or an IP address for an IP literal).

TLS handshake benchmark (always prints one JSON object; needs --tls):
  --handshakes N    N connections one after another, each a TCP connect, a
                    full TLS handshake (no session resumption), one echo of
                    --size bytes (default 64), close_notify, close. Reports
                    handshakes/s and handshake_ms mean/p50/p95/p99/max, where a
                    handshake runs from the start of connect() to the
                    handshake's end.

common:
  --timeout S       give up on a connect, a handshake or an echo after S
                    seconds (default 10)
  -h, --help        show this help

Exit status: 0 ok, 1 echo mismatch, 2 other errors (refused, bad flags, ...).
)";

double parse_seconds(std::string_view flag, std::string_view text, bool allow_zero, double most = 1e6) {
    const std::string copy(text);
    char* end = nullptr;
    const double value = std::strtod(copy.c_str(), &end);
    if (copy.empty() || *end != '\0' || !std::isfinite(value) || value < 0 ||
        (value == 0 && !allow_zero) || value > most) {
        throw Fatal("bad value for " + std::string(flag) + ": '" + copy +
                    "' (expected seconds, e.g. 2.5)");
    }
    return value;
}

// Accepts "--flag value", "--flag=value" and the original "client HOST PORT MESSAGE".
Options parse_args(int argc, char** argv) {
    Options o;
    bool size_given = false;
    int positional = 0;
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
            o.help = true;
        } else if (flag("--json")) {
            o.json = true;
        } else if (flag("--load")) {
            o.load = true;
        } else if (flag("--open-loop")) {
            o.open_loop = true;
        } else if (arg == "--rate") {
            o.rate = static_cast<double>(parse_number(arg, value(), 1, 100000000));
        } else if (arg == "--arrival") {
            const std::string_view arrival = value();
            if (arrival != "fixed" && arrival != "poisson") {
                throw Fatal("bad value for --arrival: '" + std::string(arrival) + "' (expected fixed or poisson)");
            }
            o.poisson = arrival == "poisson";
        } else if (arg == "--seed") {
            o.seed = parse_number(arg, value(), 0, UINT64_MAX);
        } else if (arg == "--start-at") {
            o.start_at = parse_seconds(arg, value(), false, 1e11);
        } else if (flag("--tls")) {
            o.tls = true;
        } else if (flag("--insecure")) {
            o.insecure = true;
        } else if (arg == "--cafile") {
            o.cafile = std::string(value());
            if (o.cafile.empty()) throw Fatal("--cafile: empty file name");
        } else if (arg == "--handshakes") {
            o.handshakes = parse_number(arg, value(), 1, 10000000);
        } else if (arg == "--stream") {
            o.stream = parse_number(arg, value(), 1, 1ull << 40);
        } else if (arg == "--chunk") {
            o.chunk = parse_number(arg, value(), 1, 64ull << 20);
        } else if (arg == "--host") {
            o.host = std::string(value());
        } else if (arg == "--port") {
            o.port = static_cast<uint16_t>(parse_number(arg, value(), 1, 65535));
        } else if (arg == "--message") {
            o.message = std::string(value());
        } else if (arg == "--count") {
            o.count = parse_number(arg, value(), 1, 1ull << 40);
        } else if (arg == "--size") {
            o.size = parse_number(arg, value(), 1, 1ull << 30);
            size_given = true;
        } else if (arg == "--connections") {
            o.connections = parse_number(arg, value(), 1, 1000000);
        } else if (arg == "--duration") {
            o.duration_s = parse_seconds(arg, value(), false);
        } else if (arg == "--warmup") {
            o.warmup_s = parse_seconds(arg, value(), true);
        } else if (arg == "--threads") {
            o.threads = static_cast<unsigned>(parse_number(arg, value(), 1, 256));
        } else if (arg == "--timeout") {
            o.timeout_s = parse_seconds(arg, value(), false);
        } else if (positional < 3 && (arg.empty() || arg[0] != '-')) {
            if (positional == 0) o.host = std::string(arg);
            if (positional == 1) o.port = static_cast<uint16_t>(parse_number("PORT", arg, 1, 65535));
            if (positional == 2) o.message = std::string(arg);
            ++positional;
        } else {
            throw Fatal("unknown argument '" + std::string(argv[i]) + "' (try --help)");
        }
    }
    if ((o.load || o.open_loop || o.handshakes > 0) && !size_given) o.size = 64;
    for (const auto& [given, flag] : {std::pair{!o.cafile.empty(), "--cafile"},
                                      std::pair{o.insecure, "--insecure"},
                                      std::pair{o.handshakes > 0, "--handshakes"}}) {
        if (given && !o.tls) throw Fatal(std::string(flag) + " needs --tls");
    }
    if (o.insecure && !o.cafile.empty()) {
        throw Fatal("--cafile and --insecure contradict each other "
                    "(trust FILE, or verify nothing)");
    }
    return o;
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

// "127.0.0.1:5052" or "[::1]:5052".
std::string format_endpoint(const Endpoint& ep) {
    std::array<char, NI_MAXHOST> host{};
    std::array<char, NI_MAXSERV> serv{};
    if (getnameinfo(ep.sa(), ep.len, host.data(), host.size(), serv.data(), serv.size(),
                    NI_NUMERICHOST | NI_NUMERICSERV) != 0) {
        return "?";
    }
    const bool v6 = ep.family() == AF_INET6;
    return (v6 ? "[" : "") + std::string(host.data()) + (v6 ? "]:" : ":") + serv.data();
}

// A name like "localhost" may map to several addresses (::1 and 127.0.0.1);
// a careful client tries them in the order getaddrinfo suggests.
std::vector<Endpoint> resolve(const std::string& host, uint16_t port) {
    addrinfo hints{};
    hints.ai_family = AF_UNSPEC;
    hints.ai_socktype = SOCK_STREAM;
    hints.ai_flags = AI_NUMERICSERV;
    addrinfo* found = nullptr;
    const int rc = getaddrinfo(host.c_str(), std::to_string(port).c_str(), &hints, &found);
    if (rc != 0) throw Fatal("getaddrinfo " + host + ": " + gai_strerror(rc));
    const std::unique_ptr<addrinfo, decltype(&freeaddrinfo)> owner(found, freeaddrinfo);
    std::vector<Endpoint> out;
    for (const addrinfo* ai = found; ai != nullptr; ai = ai->ai_next) {
        Endpoint ep;
        std::memcpy(&ep.addr, ai->ai_addr, ai->ai_addrlen);
        ep.len = ai->ai_addrlen;
        out.push_back(ep);
    }
    return out;
}

// ---------------------------------------------------------------------------
// Socket helpers
// ---------------------------------------------------------------------------

int socket_error(int fd) {
    int err = 0;
    socklen_t len = sizeof err;
    if (::getsockopt(fd, SOL_SOCKET, SO_ERROR, &err, &len) < 0) return errno;
    return err;
}

// Starts a non-blocking connect. `err` is 0 (connected), EINPROGRESS (the
// handshake continues; the socket turns writable when it ends) or an error.
Fd start_connect(const Endpoint& ep, int& err) {
    Fd fd(::socket(ep.family(), SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0));
    if (fd.get() < 0) {
        err = errno;
        return fd;
    }
    set_nodelay(fd.get());
    err = ::connect(fd.get(), ep.sa(), ep.len) == 0 ? 0 : errno;
    // Trap: an interrupted non-blocking connect is NOT to be retried (that
    // gives EALREADY); the handshake carries on just like EINPROGRESS.
    if (err == EINTR) err = EINPROGRESS;
    return fd;
}

// Connect with a timeout, trying each resolved address in turn.
Fd connect_to(const std::vector<Endpoint>& endpoints, int timeout_ms, std::string& where) {
    int err = 0;
    for (const Endpoint& ep : endpoints) {
        where = format_endpoint(ep);
        Fd fd = start_connect(ep, err);
        if (err == EINPROGRESS) {
            pollfd p{fd.get(), POLLOUT, 0};
            int ready = 0;
            while ((ready = ::poll(&p, 1, timeout_ms)) < 0 && errno == EINTR) {
            }
            err = ready > 0 ? socket_error(fd.get()) : ready == 0 ? ETIMEDOUT : errno;
        }
        if (err == 0) return fd;
    }
    throw sys_error("connect", where, err);
}

// ---------------------------------------------------------------------------
// TLS context (OpenSSL 3)
// ---------------------------------------------------------------------------

#if ECHO_WITH_OPENSSL
// The reason of the latest OpenSSL failure on this thread ("certificate verify
// failed", "wrong version number"); empties the thread's error queue, which
// must be empty before the next call for SSL_get_error to be right.
std::string openssl_reason() {
    const unsigned long code = ERR_peek_last_error();
    ERR_clear_error();
    if (code == 0) return "unknown error (the OpenSSL error queue is empty)";
    const char* reason = ERR_reason_error_string(code);
    return reason != nullptr ? reason : "OpenSSL error " + std::to_string(code);
}

// One client context for the whole run: TLS 1.2 minimum, the library's
// default ciphers, no session tickets (every handshake is a full one).
// SSL_write behaves like send(): partial writes, and a retry may pass the
// rest of the same bytes from another address.
SslCtxPtr make_client_context(const Options& o) {
    SslCtxPtr ctx(SSL_CTX_new(TLS_client_method()));
    if (!ctx) throw Fatal("SSL_CTX_new: " + openssl_reason());
    if (SSL_CTX_set_min_proto_version(ctx.get(), TLS1_2_VERSION) != 1) {
        throw Fatal("SSL_CTX_set_min_proto_version: " + openssl_reason());
    }
    SSL_CTX_set_options(ctx.get(), SSL_OP_NO_TICKET);
    SSL_CTX_set_mode(ctx.get(),
                     SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    if (o.insecure) {
        SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_NONE, nullptr);
        std::fputs("[client] warning: --insecure: the server's certificate is not verified\n",
                   stderr);
        return ctx;
    }
    SSL_CTX_set_verify(ctx.get(), SSL_VERIFY_PEER, nullptr);
    if (o.cafile.empty()) {
        if (SSL_CTX_set_default_verify_paths(ctx.get()) != 1) {
            throw Fatal("SSL_CTX_set_default_verify_paths: " + openssl_reason());
        }
    } else if (SSL_CTX_load_verify_locations(ctx.get(), o.cafile.c_str(), nullptr) != 1) {
        // Name the usual cause plainly: OpenSSL's own text for a missing file is vague.
        const std::string reason =
            ::access(o.cafile.c_str(), R_OK) != 0 ? errno_text(errno) : openssl_reason();
        throw Fatal("--cafile " + o.cafile + ": " + reason);
    }
    return ctx;
}
#endif

// ---------------------------------------------------------------------------
// Links: one connection, plain TCP or TLS, behind one non-blocking interface
// ---------------------------------------------------------------------------

// What one call on a Link came to.
enum class IoStatus {
    kDone,       // done; Io::n bytes moved
    kWantRead,   // call again once the socket is readable
    kWantWrite,  // call again once the socket is writable
    kClosed,     // orderly end of the peer's data: TCP EOF, or the TLS close_notify
    kTruncated,  // TLS: TCP EOF without close_notify, so the data may be cut short
    kFailed,     // an error; Link::error() says which
};

struct Io {
    IoStatus status = IoStatus::kDone;
    size_t n = 0;
};

bool blocked(IoStatus s) { return s == IoStatus::kWantRead || s == IoStatus::kWantWrite; }

// What poll() must wait for before a call that returned `want` is retried.
short poll_events(IoStatus want) {
    return want == IoStatus::kWantWrite ? short{POLLOUT} : short{POLLIN};
}

// Did poll() report what `want` waits for? Errors and hangups wake everyone:
// the retried call is what reports them.
bool ready_for(IoStatus want, short revents) {
    return (revents & (poll_events(want) | POLLERR | POLLHUP)) != 0;
}

// Owns a socket and, with TLS, its SSL object (unique_ptr with SSL_free).
// Destruction sends our close_notify if the TLS connection is still healthy
// (one non-blocking attempt), then closes the socket.
class Link {
public:
    Link() = default;
    explicit Link(Fd fd) noexcept : fd_(std::move(fd)) {}
#if ECHO_WITH_OPENSSL
    Link(Fd fd, SslPtr ssl) noexcept : ssl_(std::move(ssl)), fd_(std::move(fd)) {}
#endif
    Link(Link&&) noexcept = default;
    Link& operator=(Link&& other) noexcept {
        if (this != &other) {
            reset();
            fd_ = std::move(other.fd_);
            err_ = other.err_;
            error_ = std::move(other.error_);
#if ECHO_WITH_OPENSSL
            ssl_ = std::move(other.ssl_);
            reason_ = other.reason_;
            broken_ = other.broken_;
            notified_ = other.notified_;
#endif
        }
        return *this;
    }
    Link(const Link&) = delete;
    Link& operator=(const Link&) = delete;
    ~Link() { reset(); }

    int fd() const noexcept { return fd_.get(); }

#if ECHO_WITH_OPENSSL
    bool tls() const noexcept { return ssl_ != nullptr; }
    // Decrypted bytes (or a whole record) held inside OpenSSL: poll() cannot see them.
    bool pending() const noexcept { return ssl_ && SSL_has_pending(ssl_.get()) == 1; }
    std::string version() const { return SSL_get_version(ssl_.get()); }
    std::string cipher() const { return SSL_CIPHER_get_name(SSL_get_current_cipher(ssl_.get())); }
    long verify_result() const { return SSL_get_verify_result(ssl_.get()); }
    // What TLS says when the peer answers a ClientHello with something else
    // (an echo of it, an HTTP reply...): the peer does not speak TLS.
    bool peer_not_tls() const noexcept {
        return reason_ == SSL_R_UNEXPECTED_MESSAGE || reason_ == SSL_R_WRONG_VERSION_NUMBER ||
               reason_ == SSL_R_PACKET_LENGTH_TOO_LONG;
    }
#else
    static bool tls() noexcept { return false; }
    static bool pending() noexcept { return false; }
#endif

    const char* send_call() const noexcept { return tls() ? "SSL_write" : "send"; }
    const char* recv_call() const noexcept { return tls() ? "SSL_read" : "recv"; }

    // Why the last call said kFailed (or kTruncated).
    std::string error() const { return error_.empty() ? errno_text(err_) : error_; }

    Io send(const char* data, size_t len) {
#if ECHO_WITH_OPENSSL
        if (ssl_) {
            ERR_clear_error();
            size_t n = 0;
            const int rc = SSL_write_ex(ssl_.get(), data, len, &n);
            return rc == 1 ? Io{IoStatus::kDone, n} : tls_status(rc, errno);
        }
#endif
        ssize_t n = 0;
        while ((n = ::send(fd_.get(), data, len, MSG_NOSIGNAL)) < 0 && errno == EINTR) {
        }
        if (n >= 0) return {IoStatus::kDone, static_cast<size_t>(n)};
        return plain_failure(IoStatus::kWantWrite);
    }

    Io recv(char* buf, size_t len) {
#if ECHO_WITH_OPENSSL
        if (ssl_) {
            ERR_clear_error();
            size_t n = 0;
            const int rc = SSL_read_ex(ssl_.get(), buf, len, &n);
            return rc == 1 ? Io{IoStatus::kDone, n} : tls_status(rc, errno);
        }
#endif
        ssize_t n = 0;
        while ((n = ::recv(fd_.get(), buf, len, 0)) < 0 && errno == EINTR) {
        }
        if (n > 0) return {IoStatus::kDone, static_cast<size_t>(n)};
        if (n == 0) return {IoStatus::kClosed, 0};
        return plain_failure(IoStatus::kWantRead);
    }

    // One step of the TLS handshake (SSL_connect); kDone when it is complete.
    Io handshake() {
#if ECHO_WITH_OPENSSL
        if (ssl_) {
            ERR_clear_error();
            const int rc = SSL_connect(ssl_.get());
            if (rc == 1) return {};
            const Io io = tls_status(rc, errno);
            return io.status == IoStatus::kClosed || io.status == IoStatus::kTruncated
                       ? fail("the server closed the connection during the handshake")
                       : io;
        }
#endif
        return {};
    }

    // "No more data from us": TLS sends close_notify (SSL_shutdown; we may go
    // on reading the rest of the echo), plain TCP sends a FIN (shutdown(SHUT_WR)).
    Io end_output() {
#if ECHO_WITH_OPENSSL
        if (ssl_) {
            ERR_clear_error();
            const int rc = SSL_shutdown(ssl_.get());  // 0: ours sent, 1: theirs seen too
            if (rc >= 0) notified_ = true;
            return rc >= 0 ? Io{} : tls_status(rc, errno);
        }
#endif
        if (::shutdown(fd_.get(), SHUT_WR) == 0) return {};
        return plain_failure(IoStatus::kFailed);
    }

    void reset() noexcept {
#if ECHO_WITH_OPENSSL
        // SSL_shutdown is not allowed after a fatal error, nor mid-handshake.
        if (ssl_ && !broken_ && !notified_ && SSL_is_init_finished(ssl_.get()) == 1) {
            ERR_clear_error();
            SSL_shutdown(ssl_.get());
            ERR_clear_error();
        }
        ssl_.reset();
        reason_ = 0;
        broken_ = false;
        notified_ = false;
#endif
        fd_.reset();
    }

private:
    Io plain_failure(IoStatus would_block) {
        if (errno == EAGAIN || errno == EWOULDBLOCK) return {would_block, 0};
        err_ = errno;
        error_.clear();
        return {IoStatus::kFailed, 0};
    }

    Io fail(std::string why) {
        error_ = std::move(why);
        return {IoStatus::kFailed, 0};
    }

#if ECHO_WITH_OPENSSL
    // Maps SSL_get_error after a call that returned `rc`; `saved_errno` is errno
    // right after that call (SSL_ERROR_SYSCALL means: look at errno).
    Io tls_status(int rc, int saved_errno) {
        const int code = SSL_get_error(ssl_.get(), rc);
        if (code == SSL_ERROR_WANT_READ) return {IoStatus::kWantRead, 0};
        if (code == SSL_ERROR_WANT_WRITE) return {IoStatus::kWantWrite, 0};
        if (code == SSL_ERROR_ZERO_RETURN) return {IoStatus::kClosed, 0};
        broken_ = true;
        const unsigned long last = ERR_peek_last_error();
        const bool eof = (code == SSL_ERROR_SYSCALL && last == 0 && saved_errno == 0) ||
                         (code == SSL_ERROR_SSL && ERR_GET_LIB(last) == ERR_LIB_SSL &&
                          ERR_GET_REASON(last) == SSL_R_UNEXPECTED_EOF_WHILE_READING);
        if (eof) {
            ERR_clear_error();
            error_ = "the server closed the TCP connection without a TLS close_notify";
            return {IoStatus::kTruncated, 0};
        }
        if (code == SSL_ERROR_SYSCALL && last == 0) {
            err_ = saved_errno;
            error_.clear();
            return {IoStatus::kFailed, 0};
        }
        reason_ = ERR_GET_LIB(last) == ERR_LIB_SSL ? ERR_GET_REASON(last) : 0;
        std::string why = openssl_reason();
        if (reason_ == SSL_R_CERTIFICATE_VERIFY_FAILED) {
            why += std::string(": ") + X509_verify_cert_error_string(verify_result());
        }
        return fail(std::move(why));
    }

    SslPtr ssl_;
    int reason_ = 0;         // ERR_GET_REASON of the last SSL-library failure, 0: none
    bool broken_ = false;    // a fatal TLS error: no close_notify any more
    bool notified_ = false;  // our close_notify is out
#endif
    Fd fd_;
    int err_ = 0;        // errno of the last plain-socket failure
    std::string error_;  // or the reason of the last TLS failure
};

// "SSL_read 127.0.0.1:5052: Connection reset by peer".
Fatal link_error(const char* call, const std::string& where, const Link& link) {
    return Fatal(std::string(call) + " " + where + ": " + link.error());
}

// Waits until `link` can retry the call that asked for `want`. False when
// `deadline` passes first.
bool wait_ready(const Link& link, IoStatus want, Clock::time_point deadline,
                const std::string& where) {
    for (;;) {
        const auto left = std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now());
        if (left.count() <= 0) return false;
        pollfd p{link.fd(), poll_events(want), 0};
        const int ready = ::poll(&p, 1, static_cast<int>(left.count()));
        if (ready > 0) return true;
        if (ready < 0 && errno != EINTR) throw sys_error("poll", where, errno);
    }
}

// "HOST:PORT" as the user wrote the host, "[::1]:PORT" for IPv6.
std::string host_port(const std::string& host, uint16_t port) {
    const bool v6 = host.find(':') != host.npos;
    return (v6 ? "[" + host + "]:" : host + ":") + std::to_string(port);
}

// A connection opened by Connector::open, and when each step ended.
struct Opened {
    Link link;
    std::string where;  // the address connected to, e.g. "127.0.0.1:5052"
    Clock::time_point connect_started;
    Clock::time_point connected;
    Clock::time_point handshaken;  // == connected without TLS
};

// Opens the connections of a run: TCP connect to the resolved --host, then
// with --tls a full handshake on a fresh SSL (no resumption) checking the
// server's certificate against --host.
class Connector {
public:
    explicit Connector(const Options& o)
        : host_(o.host), port_(o.port), timeout_(std::chrono::milliseconds(
                                              static_cast<int>(std::ceil(o.timeout_s * 1000)))),
          endpoints_(resolve(o.host, o.port)) {
#if ECHO_WITH_OPENSSL
        if (o.tls) {
            ctx_ = make_client_context(o);
            verify_ = !o.insecure;
            in6_addr scratch{};
            host_is_ip_ = ::inet_pton(AF_INET, o.host.c_str(), &scratch) == 1 ||
                          ::inet_pton(AF_INET6, o.host.c_str(), &scratch) == 1;
        }
#endif
    }

    const std::vector<Endpoint>& endpoints() const { return endpoints_; }

    // The TLS session for a connected socket, its handshake not yet started;
    // without --tls just the socket.
    Link wrap(Fd fd) const {
#if ECHO_WITH_OPENSSL
        if (ctx_) {
            SslPtr ssl(SSL_new(ctx_.get()));
            if (!ssl) throw Fatal("SSL_new: " + openssl_reason());
            if (SSL_set_fd(ssl.get(), fd.get()) != 1) {
                throw Fatal("SSL_set_fd: " + openssl_reason());
            }
            // SNI names the site we want; an IP literal is not a name (RFC 6066).
            if (!host_is_ip_ && SSL_set_tlsext_host_name(ssl.get(), host_.c_str()) != 1) {
                throw Fatal("SSL_set_tlsext_host_name " + host_ + ": " + openssl_reason());
            }
            if (verify_ && !host_is_ip_ && SSL_set1_host(ssl.get(), host_.c_str()) != 1) {
                throw Fatal("SSL_set1_host " + host_ + ": " + openssl_reason());
            }
            if (verify_ && host_is_ip_ &&
                X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl.get()), host_.c_str()) != 1) {
                throw Fatal("X509_VERIFY_PARAM_set1_ip_asc " + host_ + ": " + openssl_reason());
            }
            SSL_set_connect_state(ssl.get());
            return {std::move(fd), std::move(ssl)};
        }
#endif
        return Link(std::move(fd));
    }

    // Connect, then (with TLS) handshake, each within --timeout; throws Fatal.
    Opened open() const {
        Opened out;
        out.connect_started = Clock::now();
        out.link = wrap(connect_to(endpoints_, timeout_ms(), out.where));
        out.connected = Clock::now();
        const auto deadline = out.connected + timeout_;
        for (Io io = out.link.handshake(); io.status != IoStatus::kDone;
             io = out.link.handshake()) {
            if (!blocked(io.status)) throw handshake_failed(out.link);
            if (!wait_ready(out.link, io.status, deadline, out.where)) {
                throw handshake_failed("timed out after " + std::to_string(timeout_ms()) + " ms");
            }
        }
        out.handshaken = Clock::now();
        return out;
    }

    // "TLS handshake with HOST:PORT failed: WHY", the one-line error.
    Fatal handshake_failed(const std::string& why) const {
        return Fatal("TLS handshake with " + host_port(host_, port_) + " failed: " + why);
    }

    // Why the handshake on `link` failed.
    Fatal handshake_failed(const Link& link) const {
        std::string why = link.error();
#if ECHO_WITH_OPENSSL
        const long verify = link.verify_result();
        if (verify == X509_V_ERR_HOSTNAME_MISMATCH || verify == X509_V_ERR_IP_ADDRESS_MISMATCH) {
            why += " (the certificate is not for '" + host_ + "')";
        } else if (link.peer_not_tls()) {
            why += " (is the server speaking TLS on that port?)";
        }
#endif
        return handshake_failed(why);
    }

private:
    int timeout_ms() const { return static_cast<int>(timeout_.count()); }

    std::string host_;
    uint16_t port_;
    std::chrono::milliseconds timeout_;
    std::vector<Endpoint> endpoints_;
#if ECHO_WITH_OPENSSL
    SslCtxPtr ctx_;
    bool verify_ = false;
    bool host_is_ip_ = false;
#endif
};

// Ends a TLS connection cleanly: our close_notify, then the rest of the
// server's data until its close_notify or EOF (without waiting, our close()
// would answer its close_notify with a reset). Plain TCP: nothing to do -
// close() is the whole goodbye, as it always was.
void close_gracefully(Link& link, int timeout_ms, const std::string& where) {
    if (!link.tls()) return;
    const auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
    auto wait_or_fail = [&](IoStatus want) {
        if (!wait_ready(link, want, deadline, where)) {
            throw Fatal("SSL_shutdown " + where + ": the server did not close within " +
                        std::to_string(timeout_ms) + " ms of our close_notify");
        }
    };
    for (Io io = link.end_output(); io.status != IoStatus::kDone; io = link.end_output()) {
        if (!blocked(io.status)) throw Fatal("SSL_shutdown " + where + ": " + link.error());
        wait_or_fail(io.status);
    }
    std::array<char, 4096> sink{};
    for (;;) {
        const Io io = link.recv(sink.data(), sink.size());
        if (blocked(io.status)) {
            wait_or_fail(io.status);
        } else if (io.status != IoStatus::kDone) {
            return;  // its close_notify, a bare EOF or a reset: the connection is over
        } else if (Clock::now() >= deadline) {
            wait_or_fail(IoStatus::kWantRead);  // data that never ends: the same timeout
        }
    }
}

// ---------------------------------------------------------------------------
// Payload, printing, statistics
// ---------------------------------------------------------------------------

// Fixed-seed xorshift64: reproducible pseudo-random bytes, cheap to make.
std::vector<char> make_pool(size_t size) {
    std::vector<char> pool(size + kPoolSlack);
    uint64_t x = 0x9E3779B97F4A7C15ull;
    for (char& byte : pool) {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        byte = static_cast<char>(x >> 56);
    }
    return pool;
}

// Python's repr() of a bytes object, so output matches the Python clients:
// b'Hello', b"it's", b'\x00\n'.
std::string python_bytes_repr(std::string_view data) {
    const bool dq = data.find('\'') != data.npos && data.find('"') == data.npos;
    const char quote = dq ? '"' : '\'';
    std::string out = "b";
    out += quote;
    for (const char ch : data) {
        const auto byte = static_cast<unsigned char>(ch);
        if (ch == '\\' || ch == quote) {
            out += '\\';
            out += ch;
        } else if (ch == '\n') {
            out += "\\n";
        } else if (ch == '\r') {
            out += "\\r";
        } else if (ch == '\t') {
            out += "\\t";
        } else if (byte < 0x20 || byte >= 0x7f) {
            std::array<char, 8> hex{};
            std::snprintf(hex.data(), hex.size(), "\\x%02x", byte);
            out += hex.data();
        } else {
            out += ch;
        }
    }
    out += quote;
    return out;
}

// Closed-loop latencies in nanoseconds: an HdrHistogram (hdr_histogram.h)
// from 1 ns to 60 s at 3 significant digits (<= 0.1% error).
class Histogram : public HdrHistogram {
public:
    Histogram() : HdrHistogram(1, 60'000'000'000, 3) {}
};

// One small JSON object writer: keys in order, numbers with a fixed
// precision, strings escaped.
class JsonObject {
public:
    JsonObject& integer(const char* key, uint64_t value) { return raw(key, std::to_string(value)); }
    JsonObject& number(const char* key, double value, int decimals) {
        std::array<char, 64> text{};
        std::snprintf(text.data(), text.size(), "%.*f", decimals, value);
        return raw(key, text.data());
    }
    JsonObject& boolean(const char* key, bool value) { return raw(key, value ? "true" : "false"); }
    JsonObject& text(const char* key, std::string_view value) { return raw(key, quoted(value)); }
    JsonObject& raw(const char* key, const std::string& json) {
        body_ += (body_.empty() ? "" : ",") + quoted(key) + ":" + json;
        return *this;
    }
    std::string str() const { return "{" + body_ + "}"; }

private:
    static std::string quoted(std::string_view value) {
        std::string out = "\"";
        for (const char c : value) {
            if (c == '"' || c == '\\') {
                out += '\\';
                out += c;
            } else if (static_cast<unsigned char>(c) < 0x20) {
                std::array<char, 8> escape{};
                std::snprintf(escape.data(), escape.size(), "\\u%04x", static_cast<unsigned>(c));
                out += escape.data();
            } else {
                out += c;
            }
        }
        return out + "\"";
    }

    std::string body_;
};

double ms(uint64_t ns) { return static_cast<double>(ns) / 1e6; }

uint64_t ns_between(Clock::time_point from, Clock::time_point to) {
    return static_cast<uint64_t>(std::chrono::nanoseconds(to - from).count());
}

// ---------------------------------------------------------------------------
// One round trip on one connection
// ---------------------------------------------------------------------------

// Sends msg[0, size) and reads the echo into back[0, size); returns the
// elapsed nanoseconds. Sending and receiving interleave (see the top of the
// file): each side goes on until its call would block, then poll() waits for
// what each blocked call asked for - readable or writable, which over TLS
// need not match the direction of the call. EAGAIN just means "not now".
uint64_t round_trip(Link& link, const char* msg, char* back, size_t size, int timeout_ms,
                    const std::string& where) {
    const auto start = Clock::now();
    size_t sent = 0;
    size_t got = 0;
    IoStatus send_wait = IoStatus::kWantWrite;  // what the unsent rest waits for
    IoStatus recv_wait = IoStatus::kWantRead;
    short revents = POLLOUT;  // first pass: send at once, read only when poll() says so
    while (got < size) {
        if (sent < size && ready_for(send_wait, revents)) {
            for (Io io; sent < size; sent += io.n) {
                io = link.send(msg + sent, size - sent);  // maybe partial: loop sends the rest
                if (io.status == IoStatus::kFailed) {
                    throw link_error(link.send_call(), where, link);
                }
                if (io.status != IoStatus::kDone) {
                    send_wait = io.status;
                    break;
                }
            }
        }
        if (ready_for(recv_wait, revents) || link.pending()) {
            const Io io = link.recv(back + got, size - got);
            if (io.status == IoStatus::kDone) {
                got += io.n;  // one recv is NOT one message
                recv_wait = IoStatus::kWantRead;
                if (link.pending()) continue;  // TLS: more already decrypted, poll() can't tell
            } else if (blocked(io.status)) {
                recv_wait = io.status;
            } else if (io.status == IoStatus::kFailed) {
                throw link_error(link.recv_call(), where, link);
            } else {
                throw Fatal(std::string(link.recv_call()) + " " + where +
                            ": server closed the connection after " + std::to_string(got) +
                            " of " + std::to_string(size) + " bytes");
            }
        }
        if (got == size) break;
        const auto events =
            static_cast<short>(poll_events(recv_wait) | (sent < size ? poll_events(send_wait) : 0));
        pollfd p{link.fd(), events, 0};
        const int ready = ::poll(&p, 1, timeout_ms);
        revents = ready > 0 ? p.revents : short{0};
        if (ready < 0 && errno == EINTR) continue;
        if (ready < 0) throw sys_error("poll", where, errno);
        if (ready == 0) {
            throw Fatal(std::string(link.recv_call()) + " " + where + ": timed out after " +
                        std::to_string(timeout_ms) + " ms waiting for the echo (" +
                        std::to_string(got) + " of " + std::to_string(size) + " bytes back)");
        }
    }
    return ns_between(start, Clock::now());
}

void verify_echo(const char* sent, const char* back, size_t size, uint64_t trip) {
    if (std::memcmp(sent, back, size) == 0) return;
    const auto offset = static_cast<size_t>(std::mismatch(sent, sent + size, back).first - sent);
    std::array<char, 64> detail{};
    std::snprintf(detail.data(), detail.size(), "sent 0x%02x, received 0x%02x",
                  static_cast<unsigned char>(sent[offset]), static_cast<unsigned char>(back[offset]));
    throw Mismatch("echo mismatch in round trip " + std::to_string(trip + 1) +
                   " at offset " + std::to_string(offset) + ": " + detail.data());
}

int timeout_ms(const Options& o) { return static_cast<int>(std::ceil(o.timeout_s * 1000)); }

// ---------------------------------------------------------------------------
// Modes: single message, and --count round trips
// ---------------------------------------------------------------------------

// The TLS facts of a connection, for the output: two text lines, three JSON keys.
struct TlsSummary {
    bool on = false;
    std::string version;  // "TLSv1.3"
    std::string cipher;   // "TLS_AES_256_GCM_SHA384"
    double handshake_ms = 0;
};

TlsSummary tls_summary(const Link& link, double handshake_ms) {
    TlsSummary t;
#if ECHO_WITH_OPENSSL
    if (link.tls()) t = {true, link.version(), link.cipher(), handshake_ms};
#else
    static_cast<void>(link);
    static_cast<void>(handshake_ms);
#endif
    return t;
}

// The handshake here is TLS alone: from the end of the TCP connect to the
// end of SSL_connect.
TlsSummary tls_summary(const Opened& op) {
    return tls_summary(op.link, ms(ns_between(op.connected, op.handshaken)));
}

void print_tls_lines(const TlsSummary& t) {
    if (!t.on) return;
    std::printf("[client] TLS     : %s %s\n", t.version.c_str(), t.cipher.c_str());
    std::printf("[client] handshake: %.3f ms\n", t.handshake_ms);
}

// The keys --tls adds to a JSON object: ,"tls_version":"TLSv1.3","cipher":"...",
// then "handshake_ms" when `handshake` is given (a number or an object). Empty
// without TLS. OpenSSL's version and cipher names need no JSON escaping.
std::string tls_json(const TlsSummary& t, const std::string& handshake) {
    if (!t.on) return "";
    std::string out = R"(,"tls_version":")" + t.version + R"(","cipher":")" + t.cipher + '"';
    if (!handshake.empty()) out += ",\"handshake_ms\":" + handshake;
    return out;
}

std::string json_ms(double value) {
    std::array<char, 32> text{};
    std::snprintf(text.data(), text.size(), "%.4f", value);
    return text.data();
}

// The original form: one message, three lines of output (five with --tls).
int run_single(const Options& o, const Connector& connector) {
    Opened op = connector.open();
    std::string back(o.message.size(), '\0');
    const uint64_t ns = round_trip(op.link, o.message.data(), back.data(), back.size(),
                                   timeout_ms(o), op.where);
    verify_echo(o.message.data(), back.data(), back.size(), 0);
    close_gracefully(op.link, timeout_ms(o), op.where);
    print_tls_lines(tls_summary(op));
    std::printf("[client] sent    : %s\n", python_bytes_repr(o.message).c_str());
    std::printf("[client] received: %s\n", python_bytes_repr(back).c_str());
    std::printf("[client] RTT     : %.3f ms\n", ms(ns));
    return 0;
}

int run_count(const Options& o, const Connector& connector) {
    Opened op = connector.open();
    const std::string& where = op.where;
    const size_t size = o.size ? o.size : o.message.size();
    const std::vector<char> pool =
        o.size ? make_pool(size) : std::vector<char>(o.message.begin(), o.message.end());
    std::vector<char> back(size);
    Histogram latency;

    const auto start = Clock::now();
    for (uint64_t trip = 0; trip < o.count; ++trip) {
        const char* msg = pool.data() + (o.size ? trip % kPoolSlack : 0);
        latency.record(round_trip(op.link, msg, back.data(), size, timeout_ms(o), where));
        verify_echo(msg, back.data(), size, trip);
    }
    const double total_s = std::chrono::duration<double>(Clock::now() - start).count();
    const double mb_per_s = static_cast<double>(o.count * size) / total_s / 1e6;
    close_gracefully(op.link, timeout_ms(o), where);
    const TlsSummary tls = tls_summary(op);

    if (o.json) {
        std::printf("{\"server\":\"%s\",\"count\":%llu,\"size\":%zu,\"total_s\":%.6f,"
                    "\"mb_per_s\":%.3f,\"rtt_ms\":{\"min\":%.4f,\"p50\":%.4f,"
                    "\"p95\":%.4f,\"p99\":%.4f,\"max\":%.4f}%s}\n",
                    where.c_str(), static_cast<unsigned long long>(o.count), size, total_s,
                    mb_per_s, ms(latency.min()), ms(latency.percentile(50)),
                    ms(latency.percentile(95)), ms(latency.percentile(99)), ms(latency.max()),
                    tls_json(tls, json_ms(tls.handshake_ms)).c_str());
    } else {
        print_tls_lines(tls);
        std::printf("[client] round trips: %llu x %zu bytes to %s\n",
                    static_cast<unsigned long long>(o.count), size, where.c_str());
        std::printf("[client] latency ms : min %.3f  p50 %.3f  p95 %.3f  p99 %.3f  max %.3f\n",
                    ms(latency.min()), ms(latency.percentile(50)), ms(latency.percentile(95)),
                    ms(latency.percentile(99)), ms(latency.max()));
        std::printf("[client] throughput : %.2f MB/s\n", mb_per_s);
    }
    return 0;
}

// ---------------------------------------------------------------------------
// Stream mode
// ---------------------------------------------------------------------------

// Byte i of the stream is pool[i % pool.size()]. The pool is a little longer
// than a chunk (kPoolSlack), so a chunk echoed twice, or one dropped, shifts
// the pattern and fails the check.
class StreamPattern {
public:
    explicit StreamPattern(size_t chunk) : pool_(make_pool(chunk)) {}

    // The next contiguous run of the stream from `offset`, at most `limit` bytes.
    std::pair<const char*, size_t> run(uint64_t offset, size_t limit) const {
        const auto at = static_cast<size_t>(offset % pool_.size());
        return {pool_.data() + at, std::min(limit, pool_.size() - at)};
    }

    // Checks data[0, len) against the stream from `offset`; throws on a difference.
    void verify(uint64_t offset, const char* data, size_t len) const {
        for (size_t done = 0; done < len;) {
            const auto [expected, n] = run(offset + done, len - done);
            // memcmp is the vectorised scan; std::mismatch only finds where, on failure.
            if (std::memcmp(expected, data + done, n) != 0) {
                const auto* differs = std::mismatch(expected, expected + n, data + done).first;
                const auto at = offset + done + static_cast<uint64_t>(differs - expected);
                throw Mismatch("stream echo differs at byte offset " + std::to_string(at));
            }
            done += n;
        }
    }

private:
    std::vector<char> pool_;
};

// One non-blocking connection, one poll() loop: send while unsent bytes
// remain, read whenever the echo arrives (a client that only wrote would
// deadlock once both sides' buffers are full), end our output after the last
// byte (TCP: shutdown(SHUT_WR); TLS: close_notify), and finish at the
// server's end (TCP: EOF; TLS: its close_notify). Plain TCP makes one send()
// and one recv() per wakeup; TLS goes on until a call would block, since one
// SSL_write or SSL_read moves a single record (16 KiB at most).
int run_stream(const Options& o, const Connector& connector) {
    Opened op = connector.open();
    Link& link = op.link;
    const std::string& where = op.where;
    const bool drain = link.tls();
    const char* end_call = drain ? "SSL_shutdown" : "shutdown";
    const StreamPattern pattern(o.chunk);
    std::vector<char> in(std::max(o.chunk, kStreamReadSize));
    uint64_t sent = 0;
    uint64_t got = 0;
    bool output_ended = false;  // our FIN or close_notify is out
    bool eof = false;
    IoStatus send_wait = IoStatus::kWantWrite;
    IoStatus recv_wait = IoStatus::kWantRead;
    short revents = POLLOUT;  // first pass: start sending at once
    const auto start = Clock::now();
    while (!eof) {
        for (bool more = !output_ended && ready_for(send_wait, revents); more;) {
            Io io;
            if (sent < o.stream) {
                const auto [data, len] =
                    pattern.run(sent, std::min<uint64_t>(o.chunk, o.stream - sent));
                io = link.send(data, len);
                if (io.status == IoStatus::kFailed) throw link_error(link.send_call(), where, link);
                sent += io.n;
                more = drain && io.status == IoStatus::kDone;
            }
            if (sent == o.stream) {
                io = link.end_output();
                if (io.status == IoStatus::kFailed) throw link_error(end_call, where, link);
                output_ended = io.status == IoStatus::kDone;
                more = false;
            }
            if (blocked(io.status)) send_wait = io.status;
        }
        for (bool more = ready_for(recv_wait, revents) || link.pending(); more;) {
            const Io io = link.recv(in.data(), in.size());
            if (io.status == IoStatus::kDone) {
                if (got + io.n > o.stream) {
                    throw Mismatch("the server echoed " + std::to_string(got + io.n) +
                                   " bytes or more; only " + std::to_string(o.stream) + " were sent");
                }
                pattern.verify(got, in.data(), io.n);
                got += io.n;
                recv_wait = IoStatus::kWantRead;
                more = drain || link.pending();
            } else if (blocked(io.status)) {
                recv_wait = io.status;
                more = false;
            } else if (io.status == IoStatus::kClosed ||
                       (io.status == IoStatus::kTruncated && got == o.stream)) {
                // A bare EOF after every byte came back and was checked loses nothing.
                eof = true;
                more = false;
            } else if (io.status == IoStatus::kTruncated) {
                throw Fatal("stream " + where + ": " + link.error() + " after echoing " +
                            std::to_string(got) + " of " + std::to_string(o.stream) + " bytes");
            } else {
                throw link_error(link.recv_call(), where, link);
            }
        }
        if (eof) break;
        const auto events = static_cast<short>(poll_events(recv_wait) |
                                                (output_ended ? 0 : poll_events(send_wait)));
        pollfd p{link.fd(), events, 0};
        const int ready = ::poll(&p, 1, timeout_ms(o));
        revents = ready > 0 ? p.revents : short{0};
        if (ready < 0 && errno == EINTR) continue;
        if (ready < 0) throw sys_error("poll", where, errno);
        if (ready == 0) {
            throw Fatal("stream " + where + ": nothing happened for " + std::to_string(timeout_ms(o)) +
                        " ms (" + std::to_string(sent) + " bytes sent, " + std::to_string(got) +
                        " echoed of " + std::to_string(o.stream) + ")");
        }
    }
    const double total_s = std::chrono::duration<double>(Clock::now() - start).count();
    if (got != o.stream) {
        throw Fatal("stream " + where + ": the server closed after echoing " + std::to_string(got) +
                    " of " + std::to_string(o.stream) + " bytes");
    }
    const TlsSummary tls = tls_summary(op);
    std::printf("{\"server\":\"%s\",\"bytes\":%llu,\"chunk\":%zu,\"total_s\":%.6f,"
                "\"mb_per_s\":%.3f%s}\n",
                where.c_str(), static_cast<unsigned long long>(o.stream), o.chunk, total_s,
                static_cast<double>(o.stream) / total_s / 1e6,
                tls_json(tls, json_ms(tls.handshake_ms)).c_str());
    return 0;
}

// ---------------------------------------------------------------------------
// Handshake mode
// ---------------------------------------------------------------------------

// "{"mean":..,"p50":..,"p95":..,"p99":..,"max":..}" in milliseconds.
std::string handshake_percentiles(const Histogram& h) {
    std::array<char, 160> text{};
    std::snprintf(text.data(), text.size(),
                  R"({"mean":%.4f,"p50":%.4f,"p95":%.4f,"p99":%.4f,"max":%.4f})",
                  h.mean() / 1e6, ms(h.percentile(50)), ms(h.percentile(95)), ms(h.percentile(99)),
                  ms(h.max()));
    return text.data();
}

// --handshakes N: the cost of a new TLS client. Each connection in turn:
// TCP connect, full handshake (fresh SSL, no tickets: nothing to resume),
// one verified echo of --size bytes, close_notify, the server's end, close.
// A handshake is timed from the start of connect() to the end of SSL_connect;
// the rate counts whole connections, echo and goodbye included.
int run_handshakes(const Options& o, const Connector& connector) {
    const std::vector<char> pool = make_pool(o.size);
    std::vector<char> back(o.size);
    Histogram handshake;
    TlsSummary tls;
    std::string where;
    const auto start = Clock::now();
    for (uint64_t i = 0; i < o.handshakes; ++i) {
        Opened op = connector.open();
        handshake.record(ns_between(op.connect_started, op.handshaken));
        const char* msg = pool.data() + i % kPoolSlack;
        round_trip(op.link, msg, back.data(), o.size, timeout_ms(o), op.where);
        verify_echo(msg, back.data(), o.size, i);
        close_gracefully(op.link, timeout_ms(o), op.where);
        if (i == 0) tls = tls_summary(op);
        where = op.where;
    }
    const double total_s = std::chrono::duration<double>(Clock::now() - start).count();
    std::printf("{\"server\":\"%s\",\"handshakes\":%llu,\"size\":%zu,\"total_s\":%.6f,"
                "\"rate_per_s\":%.1f%s}\n",
                where.c_str(), static_cast<unsigned long long>(o.handshakes), o.size, total_s,
                static_cast<double>(o.handshakes) / total_s,
                tls_json(tls, handshake_percentiles(handshake)).c_str());
    return 0;
}

// ---------------------------------------------------------------------------
// Load mode
// ---------------------------------------------------------------------------

struct ErrorCounts {
    uint64_t connect = 0;
    uint64_t reset = 0;
    uint64_t mismatch = 0;
    uint64_t eof = 0;
    uint64_t timeout = 0;
    uint64_t handshake = 0;  // TLS handshakes that failed or timed out

    void add(const ErrorCounts& o) {
        connect += o.connect;
        reset += o.reset;
        mismatch += o.mismatch;
        eof += o.eof;
        timeout += o.timeout;
        handshake += o.handshake;
    }
};

// Phase 1: start every connect at once (non-blocking), then collect the
// results from epoll. Failures are counted, not fatal: a load test that hits
// a server's limits should report them. EPOLLONESHOT reports each socket once.
std::vector<Fd> connect_all(const Endpoint& ep, size_t n, int timeout_ms, ErrorCounts& errors) {
    const Fd poller(::epoll_create1(EPOLL_CLOEXEC));
    if (poller.get() < 0) throw sys_error("epoll_create1", "(connect)", errno);
    std::vector<Fd> connecting(n);
    std::vector<Fd> ready;
    size_t waiting = 0;
    for (size_t i = 0; i < n; ++i) {
        int err = 0;
        Fd fd = start_connect(ep, err);
        epoll_event ev{};
        ev.events = EPOLLOUT | EPOLLONESHOT;
        ev.data.u64 = i;
        if (err == 0) {
            ready.push_back(std::move(fd));
        } else if (err == EINPROGRESS &&
                   ::epoll_ctl(poller.get(), EPOLL_CTL_ADD, fd.get(), &ev) == 0) {
            connecting[i] = std::move(fd);
            ++waiting;
        } else {
            ++errors.connect;  // EMFILE, EADDRNOTAVAIL (no ports), ECONNREFUSED...
        }
    }
    const auto deadline = Clock::now() + std::chrono::milliseconds(timeout_ms);
    std::array<epoll_event, kMaxEvents> events{};
    while (waiting > 0 && Clock::now() < deadline) {
        const auto left =
            std::chrono::ceil<std::chrono::milliseconds>(deadline - Clock::now()).count();
        const int got = ::epoll_wait(poller.get(), events.data(), kMaxEvents, static_cast<int>(left));
        for (int i = 0; i < got; ++i) {
            Fd& fd = connecting[events[i].data.u64];
            --waiting;
            if (socket_error(fd.get()) == 0) {
                ready.push_back(std::move(fd));
            } else {
                ++errors.connect;
                fd.reset();
            }
        }
    }
    errors.connect += waiting;  // handshakes that never finished
    return ready;
}

// Phase 2: one epoll loop driving its share of the connections. With TLS
// each first completes its handshake there (non-blocking SSL_connect, driven
// by WANT_READ/WANT_WRITE, under the same --timeout as an echo). Each has
// exactly one message in flight; when its echo is complete and verified,
// the latency is recorded and the next message goes out at once.
class LoadWorker {
public:
    LoadWorker(std::vector<Link> links, const std::vector<char>& pool, size_t size,
               int timeout_ms, const Connector& connector)
        : pool_(pool), size_(size), timeout_(std::chrono::milliseconds(timeout_ms)),
          scratch_(std::min<size_t>(size, size_t{64} * 1024)), connector_(connector) {
        conns_.reserve(links.size());
        for (auto& link : links) {
            conns_.emplace_back();
            conns_.back().link = std::move(link);
            conns_.back().offset = conns_.size() % kPoolSlack;
        }
    }

    // Thread entry point: must not throw, so errors are kept for main.
    void run(Clock::time_point measure_from, Clock::time_point until) noexcept {
        try {
            measure_from_ = measure_from;
            until_ = until;
            loop();
        } catch (...) {
            error_ = std::current_exception();
        }
    }

    std::exception_ptr error() const { return error_; }
    const Histogram& latency() const { return latency_; }
    uint64_t round_trips() const { return round_trips_; }
    const ErrorCounts& errors() const { return errors_; }
    const Histogram& handshakes() const { return handshake_; }
    const TlsSummary& tls() const { return tls_; }
    const std::string& handshake_error() const { return handshake_error_; }

private:
    struct Conn {
        Link link;
        size_t sent = 0;
        size_t got = 0;
        size_t offset = 0;  // which window of the pool is in flight
        bool handshaking = false;
        bool send_wants_read = false;   // TLS: SSL_write asked to read first
        bool recv_wants_write = false;  // TLS: SSL_read asked to write first
        bool want_out = false;          // EPOLLOUT is in the interest set
        Clock::time_point started;      // of the message in flight, or of the handshake
    };

    const char* message(const Conn& c) const { return pool_.data() + c.offset; }

    void loop() {
        poller_ = Fd(::epoll_create1(EPOLL_CLOEXEC));
        if (poller_.get() < 0) throw sys_error("epoll_create1", "(load)", errno);
        for (size_t i = 0; i < conns_.size(); ++i) {
            if (!watch(conns_[i], EPOLL_CTL_ADD, i)) throw sys_error("epoll_ctl", "(load)", errno);
        }
        live_ = conns_.size();
        for (Conn& c : conns_) {
            if (c.link.tls()) {
                c.handshaking = true;
                c.started = Clock::now();
                shake(c);
            } else {
                begin(c, Clock::now());
            }
        }

        std::array<epoll_event, kMaxEvents> events{};
        auto next_scan = Clock::now() + kStallScanEvery;
        // Stop at the deadline, or early if every connection has failed.
        for (auto now = Clock::now(); now < until_ && live_ > 0; now = Clock::now()) {
            if (now >= next_scan) {
                expire_stalled(now);
                next_scan = now + kStallScanEvery;
            }
            const auto wait = std::chrono::ceil<std::chrono::milliseconds>(
                std::min(until_, next_scan) - now);
            const int n = ::epoll_wait(poller_.get(), events.data(), kMaxEvents,
                                       static_cast<int>(wait.count()));
            if (n < 0 && errno != EINTR) throw sys_error("epoll_wait", "(load)", errno);
            for (int i = 0; i < n; ++i) handle(conns_[events[i].data.u64], events[i].events);
        }
    }

    bool watch(Conn& c, int op, size_t index) {
        epoll_event ev{};
        ev.events = EPOLLIN | (c.want_out ? EPOLLOUT : 0u);
        ev.data.u64 = index;
        return ::epoll_ctl(poller_.get(), op, c.link.fd(), &ev) == 0;
    }

    // EPOLLOUT is watched only while a call waits for it (level triggering
    // would report a writable socket on every epoll_wait otherwise).
    void set_want_out(Conn& c, bool want_out) {
        if (want_out == c.want_out) return;
        c.want_out = want_out;
        if (!watch(c, EPOLL_CTL_MOD, static_cast<size_t>(&c - conns_.data()))) {
            drop(c, errors_.reset);
        }
    }

    bool wants_out(const Conn& c) const {
        return (c.sent < size_ && !c.send_wants_read) || c.recv_wants_write;
    }

    void handle(Conn& c, uint32_t events) {
        const uint32_t trouble = EPOLLERR | EPOLLHUP;
        const bool readable = (events & (EPOLLIN | trouble)) != 0;
        const bool writable = (events & (EPOLLOUT | trouble)) != 0;
        if (c.handshaking) return shake(c);
        if (c.sent < size_ && (c.send_wants_read ? readable : writable)) send_more(c);
        if (c.link.fd() >= 0 && (c.recv_wants_write ? writable : readable)) receive(c);
    }

    // One handshake step; the first message goes out as soon as it is done.
    void shake(Conn& c) {
        const Io io = c.link.handshake();
        if (io.status == IoStatus::kDone) {
            const auto now = Clock::now();
            c.handshaking = false;
            handshake_.record(ns_between(c.started, now));
            if (!tls_.on) tls_ = tls_summary(c.link, 0);
            return begin(c, now);
        }
        if (!blocked(io.status)) {
            if (handshake_error_.empty()) {
                handshake_error_ = connector_.handshake_failed(c.link).what();
            }
            return drop(c, errors_.handshake);
        }
        set_want_out(c, io.status == IoStatus::kWantWrite);
    }

    void begin(Conn& c, Clock::time_point now) {
        c.sent = 0;
        c.got = 0;
        c.started = now;
        send_more(c);
    }

    // Partial writes: send what the kernel takes; EPOLLOUT brings us back
    // for the rest. EPOLLOUT is watched only while bytes remain unsent.
    void send_more(Conn& c) {
        c.send_wants_read = false;
        while (c.sent < size_) {
            const Io io = c.link.send(message(c) + c.sent, size_ - c.sent);
            if (io.status == IoStatus::kDone) {
                c.sent += io.n;
            } else if (blocked(io.status)) {
                c.send_wants_read = io.status == IoStatus::kWantRead;
                break;
            } else {
                return drop(c, errors_.reset);
            }
        }
        set_want_out(c, wants_out(c));
    }

    // Short reads: the echo arrives in arbitrary slices. Each slice is
    // checked against what we sent as it arrives, so no per-connection
    // receive buffer is needed - one scratch buffer serves them all.
    // Over TLS a short read does not mean "drained" when OpenSSL still holds
    // decrypted bytes (pending); bytes still in the socket wake us again.
    void receive(Conn& c) {
        const bool wanted_write = c.recv_wants_write;
        c.recv_wants_write = false;
        for (;;) {
            const size_t want = std::min(scratch_.size(), size_ - c.got);
            const Io io = c.link.recv(scratch_.data(), want);
            if (io.status == IoStatus::kDone) {
                if (std::memcmp(scratch_.data(), message(c) + c.got, io.n) != 0) {
                    return drop(c, errors_.mismatch);
                }
                c.got += io.n;
                if (c.got == size_) return complete(c);
                // Drained; level triggering wakes us again.
                if (io.n < want && !c.link.pending()) break;
            } else if (blocked(io.status)) {
                c.recv_wants_write = io.status == IoStatus::kWantWrite;
                break;
            } else if (io.status == IoStatus::kClosed || io.status == IoStatus::kTruncated) {
                return drop(c, errors_.eof);
            } else {
                return drop(c, errors_.reset);
            }
        }
        if (c.recv_wants_write != wanted_write) set_want_out(c, wants_out(c));
    }

    void complete(Conn& c) {
        const auto now = Clock::now();
        if (now >= measure_from_ && now < until_) {
            ++round_trips_;
            latency_.record(ns_between(c.started, now));
        }
        c.offset = (c.offset + 1) % kPoolSlack;
        begin(c, now);
    }

    // Closing (after our close_notify, if TLS is still healthy) also removes
    // the socket from the epoll set.
    void drop(Conn& c, uint64_t& counter) {
        ++counter;
        --live_;
        c.link.reset();
    }

    void expire_stalled(Clock::time_point now) {
        for (Conn& c : conns_) {
            if (c.link.fd() < 0 || now - c.started <= timeout_) continue;
            if (c.handshaking && handshake_error_.empty()) {
                const auto limit = std::chrono::duration_cast<std::chrono::milliseconds>(timeout_);
                handshake_error_ =
                    connector_.handshake_failed("timed out after " + std::to_string(limit.count()) +
                                                " ms")
                        .what();
            }
            drop(c, c.handshaking ? errors_.handshake : errors_.timeout);
        }
    }

    const std::vector<char>& pool_;
    size_t size_;
    Clock::duration timeout_;
    std::vector<char> scratch_;
    std::vector<Conn> conns_;
    size_t live_ = 0;  // connections not yet dropped
    Fd poller_;
    Clock::time_point measure_from_;
    Clock::time_point until_;
    Histogram latency_;
    uint64_t round_trips_ = 0;
    ErrorCounts errors_;
    const Connector& connector_;
    Histogram handshake_;          // TLS: from the loop's start to each handshake's end
    TlsSummary tls_;               // TLS: of the first completed handshake
    std::string handshake_error_;  // TLS: why the first failed handshake failed
    std::exception_ptr error_;
};

// Deal the sockets out round-robin, one share per thread (with TLS each gets
// its SSL here, on this thread; the context is shared, each SSL is not).
std::vector<std::unique_ptr<LoadWorker>> make_workers(std::vector<Fd> sockets, unsigned threads,
                                                      const std::vector<char>& pool,
                                                      const Options& o,
                                                      const Connector& connector) {
    const size_t n = std::min<size_t>(threads, sockets.size());
    std::vector<std::vector<Link>> shares(n);
    for (size_t i = 0; i < sockets.size(); ++i) {
        shares[i % n].push_back(connector.wrap(std::move(sockets[i])));
    }
    std::vector<std::unique_ptr<LoadWorker>> workers;
    workers.reserve(shares.size());
    for (auto& share : shares) {
        workers.push_back(std::make_unique<LoadWorker>(std::move(share), pool, o.size,
                                                       timeout_ms(o), connector));
    }
    return workers;
}

// Joins on every path: destroying a joinable std::thread calls std::terminate.
struct Joiner {
    std::vector<std::thread> threads;
    ~Joiner() {
        for (auto& t : threads) t.join();
    }
};

int run_load(const Options& o, const Connector& connector) {
    raise_fd_limit();
    const Endpoint ep = connector.endpoints().front();
    ErrorCounts errors;
    std::vector<Fd> sockets = connect_all(ep, o.connections, timeout_ms(o), errors);
    const std::vector<char> pool = make_pool(o.size);
    auto workers = make_workers(std::move(sockets), o.threads, pool, o, connector);

    const auto measure_from =
        Clock::now() + std::chrono::duration_cast<Clock::duration>(
                           std::chrono::duration<double>(o.warmup_s));
    const auto until = measure_from + std::chrono::duration_cast<Clock::duration>(
                                          std::chrono::duration<double>(o.duration_s));
    {
        Joiner joiner;
        for (auto& w : workers) joiner.threads.emplace_back(&LoadWorker::run, w.get(), measure_from, until);
    }

    Histogram latency;
    Histogram handshakes;
    TlsSummary tls;
    std::string handshake_error;
    uint64_t round_trips = 0;
    for (const auto& w : workers) {
        if (w->error()) std::rethrow_exception(w->error());
        latency.merge(w->latency());
        handshakes.merge(w->handshakes());
        round_trips += w->round_trips();
        errors.add(w->errors());
        if (!tls.on) tls = w->tls();
        if (handshake_error.empty()) handshake_error = w->handshake_error();
    }
    // Not one handshake succeeded (a wrong CA, a plain TCP server): say why.
    if (o.tls && handshakes.count() == 0 && !handshake_error.empty()) throw Fatal(handshake_error);
    const std::string tls_errors =
        o.tls ? ",\"handshake\":" + std::to_string(errors.handshake) : std::string();
    // Completed handshakes: those still under way when the run ended are neither here nor errors.
    const std::string tls_keys =
        o.tls ? ",\"handshakes\":" + std::to_string(handshakes.count()) +
                    tls_json(tls, handshake_percentiles(handshakes))
              : std::string();
    std::printf("{\"connections\":%zu,\"size\":%zu,\"duration_s\":%.3f,\"round_trips\":%llu,"
                "\"rate_per_s\":%.1f,\"latency_ms\":{\"p50\":%.3f,\"p90\":%.3f,\"p99\":%.3f,"
                "\"max\":%.3f},\"errors\":{\"connect\":%llu,\"reset\":%llu,\"mismatch\":%llu,"
                "\"eof\":%llu,\"timeout\":%llu%s}%s}\n",
                o.connections, o.size, o.duration_s, static_cast<unsigned long long>(round_trips),
                static_cast<double>(round_trips) / o.duration_s, ms(latency.percentile(50)),
                ms(latency.percentile(90)), ms(latency.percentile(99)), ms(latency.max()),
                static_cast<unsigned long long>(errors.connect),
                static_cast<unsigned long long>(errors.reset),
                static_cast<unsigned long long>(errors.mismatch),
                static_cast<unsigned long long>(errors.eof),
                static_cast<unsigned long long>(errors.timeout), tls_errors.c_str(),
                tls_keys.c_str());
    return errors.mismatch > 0 ? 1 : 0;
}

// ---------------------------------------------------------------------------
// Open-loop mode
// ---------------------------------------------------------------------------
//
// A closed loop (--load) sends the next message only when the last echo is
// back, so a server that stalls also stops the clock: the slow responses are
// few, the latency looks fine, and queueing is hidden ("coordinated
// omission"). Here the requests follow a schedule instead - a total rate R
// over the connections, evenly spaced or Poisson - whatever the server does.
// Each request is timed from its *intended* send time; one that waits behind
// a slow one carries that wait in its own latency. A connection may have many
// requests in flight; TCP keeps them in order, so the echoes are matched to
// their intended times first-in first-out, and every byte is checked.
//
// The client's own lateness is measured too (how far behind the schedule it
// handed each request to its connection): when that lags, the client, not the
// server, is the limit, and the run says so instead of blaming the server.

constexpr uint64_t kOpenLoopHighestUs = 60'000'000;  // 60 s, in microseconds
constexpr uint64_t kTimerTag = UINT64_MAX;           // epoll data of the schedule's timer
constexpr uint64_t kLagKeptUpUs = 1000;              // p99 schedule lag that still counts as keeping up
constexpr double kKeptUpRate = 0.95;                 // achieved / target that still counts as keeping up

HdrHistogram microsecond_histogram() { return HdrHistogram(1, kOpenLoopHighestUs, 3); }

uint64_t us_between(Clock::time_point from, Clock::time_point to) {
    return static_cast<uint64_t>(std::max<int64_t>(
        0, std::chrono::duration_cast<std::chrono::microseconds>(to - from).count()));
}

struct OpenLoopTotals {
    HdrHistogram latency = microsecond_histogram();  // from the intended send to the whole echo
    HdrHistogram lag = microsecond_histogram();      // from the intended send to the client's hand-over
    uint64_t sent = 0;       // requests scheduled in the measured window
    uint64_t completed = 0;  // ... whose echo came back whole and checked
    uint64_t mismatches = 0;
    ErrorCounts errors;
    uint64_t lost = 0;  // requests in flight on a connection that failed
    double span_s = 0;  // from the window's start to the last measured echo

    void add(const OpenLoopTotals& o) {
        span_s = std::max(span_s, o.span_s);
        latency.merge(o.latency);
        lag.merge(o.lag);
        sent += o.sent;
        completed += o.completed;
        mismatches += o.mismatches;
        errors.add(o.errors);
        lost += o.lost;
    }
};

// One epoll loop: its share of the connections and of the rate. A timerfd
// wakes it at the next intended send time, whatever the sockets do.
class OpenLoopWorker {
public:
    OpenLoopWorker(std::vector<Fd> sockets, const std::vector<char>& pool, size_t size, double rate,
                   bool poisson, uint64_t seed, int timeout_ms)
        : pool_(pool), size_(size), mean_gap_s_(1.0 / rate), poisson_(poisson), random_(seed),
          timeout_(std::chrono::milliseconds(timeout_ms)), scratch_(size_t{64} * 1024) {
        for (auto& fd : sockets) {
            conns_.emplace_back();
            conns_.back().fd = std::move(fd);
            conns_.back().offset = conns_.size() % kPoolSlack;
        }
    }

    void run(Clock::time_point start, Clock::time_point measure_from, Clock::time_point until) noexcept {
        try {
            start_ = start;
            measure_from_ = measure_from;
            until_ = until;
            loop();
        } catch (...) {
            error_ = std::current_exception();
        }
    }

    std::exception_ptr error() const { return error_; }
    const OpenLoopTotals& totals() const { return totals_; }

private:
    struct Conn {
        Fd fd;
        size_t offset = 0;  // message k is pool[(offset + k) % kPoolSlack, + size)
        uint64_t issued = 0;    // messages handed to this connection
        uint64_t sent = 0;      // ... of which wholly written
        size_t send_off = 0;    // bytes of message `sent` already written
        uint64_t received = 0;  // messages wholly echoed
        size_t recv_off = 0;    // bytes of message `received` already echoed
        std::deque<Clock::time_point> intended;  // of the messages in flight, oldest first
        bool want_out = false;
    };

    const char* message(const Conn& c, uint64_t k) const {
        return pool_.data() + (c.offset + k) % kPoolSlack;
    }

    Clock::duration next_gap() {
        const double gap_s = poisson_ ? std::exponential_distribution<double>(1.0 / mean_gap_s_)(random_)
                                      : mean_gap_s_;
        return std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(gap_s));
    }

    bool measured(Clock::time_point intended) const {
        return intended >= measure_from_ && intended < until_;
    }

    void loop() {
        poller_ = Fd(::epoll_create1(EPOLL_CLOEXEC));
        if (poller_.get() < 0) throw sys_error("epoll_create1", "(open loop)", errno);
        timer_ = Fd(::timerfd_create(CLOCK_MONOTONIC, TFD_NONBLOCK | TFD_CLOEXEC));
        if (timer_.get() < 0) throw sys_error("timerfd_create", "(open loop)", errno);
        epoll_event ev{};
        ev.events = EPOLLIN;
        ev.data.u64 = kTimerTag;
        if (::epoll_ctl(poller_.get(), EPOLL_CTL_ADD, timer_.get(), &ev) < 0) {
            throw sys_error("epoll_ctl", "(open loop timer)", errno);
        }
        for (Conn& c : conns_) watch(c, EPOLL_CTL_ADD);
        live_ = conns_.size();

        Clock::time_point next = start_;
        std::array<epoll_event, kMaxEvents> events{};
        auto next_scan = Clock::now() + kStallScanEvery;
        for (;;) {
            const auto now = Clock::now();
            while (next <= now && next < until_ && live_ > 0) {
                issue(next, now);
                next += next_gap();
            }
            const bool issuing = next < until_ && live_ > 0;
            if (!issuing && in_flight() == 0) break;
            if (now >= next_scan) {
                expire_stalled(now);
                next_scan = now + kStallScanEvery;
            }
            arm(issuing ? std::min(next, next_scan) : next_scan);
            const int n = ::epoll_wait(poller_.get(), events.data(), kMaxEvents, -1);
            if (n < 0 && errno != EINTR) throw sys_error("epoll_wait", "(open loop)", errno);
            for (int i = 0; i < n; ++i) {
                if (events[i].data.u64 == kTimerTag) {
                    uint64_t expirations = 0;
                    (void)!::read(timer_.get(), &expirations, sizeof expirations);
                } else {
                    handle(conns_[events[i].data.u64], events[i].events);
                }
            }
        }
    }

    uint64_t in_flight() const {
        uint64_t n = 0;
        for (const Conn& c : conns_) n += c.fd.get() >= 0 ? c.intended.size() : 0;
        return n;
    }

    void arm(Clock::time_point when) {
        const auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(when.time_since_epoch()).count();
        itimerspec spec{};
        spec.it_value.tv_sec = static_cast<time_t>(ns / 1'000'000'000);
        spec.it_value.tv_nsec = static_cast<long>(ns % 1'000'000'000);
        if (spec.it_value.tv_sec == 0 && spec.it_value.tv_nsec == 0) spec.it_value.tv_nsec = 1;
        if (::timerfd_settime(timer_.get(), TFD_TIMER_ABSTIME, &spec, nullptr) < 0) {
            throw sys_error("timerfd_settime", "(open loop)", errno);
        }
    }

    // Round-robin over the live connections; the hand-over's lateness is the client's.
    void issue(Clock::time_point intended, Clock::time_point now) {
        Conn* c = nullptr;
        while (c == nullptr) {
            Conn& candidate = conns_[next_conn_++ % conns_.size()];
            if (candidate.fd.get() >= 0) c = &candidate;
        }
        c->intended.push_back(intended);
        ++c->issued;
        if (measured(intended)) {
            ++totals_.sent;
            totals_.lag.record(us_between(intended, now));
        }
        if (!c->want_out) send_more(*c);
    }

    void watch(Conn& c, int op) {
        epoll_event ev{};
        ev.events = EPOLLIN | (c.want_out ? EPOLLOUT : 0u);
        ev.data.u64 = static_cast<uint64_t>(&c - conns_.data());
        if (::epoll_ctl(poller_.get(), op, c.fd.get(), &ev) < 0) throw sys_error("epoll_ctl", "(open loop)", errno);
    }

    void set_want_out(Conn& c, bool want_out) {
        if (want_out == c.want_out) return;
        c.want_out = want_out;
        watch(c, EPOLL_CTL_MOD);
    }

    void handle(Conn& c, uint32_t events) {
        if (c.fd.get() < 0) return;
        if ((events & (EPOLLOUT | EPOLLERR | EPOLLHUP)) != 0) send_more(c);
        if (c.fd.get() >= 0 && (events & (EPOLLIN | EPOLLERR | EPOLLHUP)) != 0) receive(c);
    }

    // Partial writes and EAGAIN: what the kernel does not take now waits for
    // EPOLLOUT, watched only while output is pending. MSG_NOSIGNAL: a reset
    // peer is an error to count, not a SIGPIPE.
    void send_more(Conn& c) {
        while (c.sent < c.issued) {
            const ssize_t n = ::send(c.fd.get(), message(c, c.sent) + c.send_off, size_ - c.send_off, MSG_NOSIGNAL);
            if (n > 0) {
                c.send_off += static_cast<size_t>(n);
                if (c.send_off == size_) {
                    ++c.sent;
                    c.send_off = 0;
                }
            } else if (n < 0 && errno == EINTR) {
                continue;
            } else if (n < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
                return set_want_out(c, true);
            } else {
                return drop(c, totals_.errors.reset);
            }
        }
        set_want_out(c, false);
    }

    // The echo is checked slice by slice against what this connection sent, in
    // order; each message completed pops its intended time.
    void receive(Conn& c) {
        for (;;) {
            const ssize_t n = ::recv(c.fd.get(), scratch_.data(), scratch_.size(), 0);
            if (n == 0) return drop(c, totals_.errors.eof);
            if (n < 0) {
                if (errno == EINTR) continue;
                if (errno == EAGAIN || errno == EWOULDBLOCK) return;
                return drop(c, totals_.errors.reset);
            }
            if (!check(c, scratch_.data(), static_cast<size_t>(n))) return drop(c, totals_.mismatches);
            if (static_cast<size_t>(n) < scratch_.size()) return;
        }
    }

    bool check(Conn& c, const char* data, size_t n) {
        const auto now = Clock::now();
        while (n > 0) {
            // More echo than was sent is a mismatch too (a duplicated or invented byte).
            const uint64_t sent_bytes = c.sent * size_ + c.send_off;
            const uint64_t echoed_bytes = c.received * size_ + c.recv_off;
            if (echoed_bytes >= sent_bytes) return false;
            const size_t take = static_cast<size_t>(std::min<uint64_t>({n, size_ - c.recv_off, sent_bytes - echoed_bytes}));
            if (std::memcmp(data, message(c, c.received) + c.recv_off, take) != 0) return false;
            c.recv_off += take;
            data += take;
            n -= take;
            if (c.recv_off == size_) {
                const auto intended = c.intended.front();
                c.intended.pop_front();
                if (measured(intended)) {
                    ++totals_.completed;
                    totals_.latency.record(us_between(intended, now));
                    totals_.span_s = std::chrono::duration<double>(now - measure_from_).count();
                }
                ++c.received;
                c.recv_off = 0;
            }
        }
        return true;
    }

    void drop(Conn& c, uint64_t& counter) {
        ++counter;
        for (const auto intended : c.intended) totals_.lost += measured(intended) ? 1 : 0;
        c.intended.clear();
        c.fd.reset();
        --live_;
    }

    void expire_stalled(Clock::time_point now) {
        for (Conn& c : conns_) {
            if (c.fd.get() >= 0 && !c.intended.empty() && now - c.intended.front() > timeout_) {
                drop(c, totals_.errors.timeout);
            }
        }
    }

    const std::vector<char>& pool_;
    size_t size_;
    double mean_gap_s_;
    bool poisson_;
    std::mt19937_64 random_;
    Clock::duration timeout_;
    std::vector<char> scratch_;
    std::vector<Conn> conns_;
    size_t next_conn_ = 0;
    size_t live_ = 0;
    Fd poller_;
    Fd timer_;
    Clock::time_point start_;
    Clock::time_point measure_from_;
    Clock::time_point until_;
    OpenLoopTotals totals_;
    std::exception_ptr error_;
};

// --start-at: all agents of a distributed run begin at one wall-clock instant.
Clock::time_point wait_for_start(const Options& o) {
    if (o.start_at <= 0) return Clock::now();
    const double now = std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
    const double wait_s = o.start_at - now;
    if (wait_s < -1.0) {
        throw Fatal("--start-at is " + std::to_string(-wait_s) + " s in the past (clocks out of step?)");
    }
    if (wait_s > 0) std::this_thread::sleep_for(std::chrono::duration<double>(wait_s));
    return Clock::now();
}

int run_open_loop(const Options& o, const Connector& connector) {
    if (o.tls) throw Fatal("--open-loop runs over plain TCP only (no --tls)");
    raise_fd_limit();
    ErrorCounts connect_errors;
    std::vector<Fd> sockets = connect_all(connector.endpoints().front(), o.connections, timeout_ms(o), connect_errors);
    if (sockets.empty()) throw Fatal("--open-loop: no connection to " + host_port(o.host, o.port) + " succeeded");
    const std::vector<char> pool = make_pool(o.size);
    const size_t n_workers = std::min<size_t>(o.threads, sockets.size());
    std::vector<std::vector<Fd>> shares(n_workers);
    for (size_t i = 0; i < sockets.size(); ++i) shares[i % n_workers].push_back(std::move(sockets[i]));
    std::vector<std::unique_ptr<OpenLoopWorker>> workers;
    for (size_t i = 0; i < n_workers; ++i) {
        workers.push_back(std::make_unique<OpenLoopWorker>(std::move(shares[i]), pool, o.size,
                                                           o.rate / static_cast<double>(n_workers),
                                                           o.poisson, o.seed * 1000003 + i, timeout_ms(o)));
    }

    const auto start = wait_for_start(o);
    const double started_at =
        std::chrono::duration<double>(std::chrono::system_clock::now().time_since_epoch()).count();
    const auto measure_from = start + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(o.warmup_s));
    const auto until = measure_from + std::chrono::duration_cast<Clock::duration>(std::chrono::duration<double>(o.duration_s));
    {
        Joiner joiner;
        for (auto& w : workers) joiner.threads.emplace_back(&OpenLoopWorker::run, w.get(), start, measure_from, until);
    }
    OpenLoopTotals totals;
    totals.errors.add(connect_errors);
    for (const auto& w : workers) {
        if (w->error()) std::rethrow_exception(w->error());
        totals.add(w->totals());
    }
    // Echoes per second of wall time: a server (or client) that falls behind
    // finishes the window's requests late, and that stretches the divisor.
    const double achieved = static_cast<double>(totals.completed) / std::max(o.duration_s, totals.span_s);
    const uint64_t lag_p99 = totals.lag.percentile(99);
    const bool kept_up = lag_p99 <= kLagKeptUpUs;
    const uint64_t errors = totals.errors.connect + totals.errors.reset + totals.errors.eof +
                            totals.errors.timeout + totals.lost;
    if (o.json) {
        JsonObject json;
        json.text("mode", "open-loop")
            .number("target_rate", o.rate, 1)
            .number("achieved_rate", achieved, 1)
            .integer("connections", o.connections)
            .integer("size", o.size)
            .text("arrival", o.poisson ? "poisson" : "fixed")
            .number("duration_s", o.duration_s, 3)
            .number("started_at", started_at, 6)
            .integer("sent", totals.sent)
            .integer("completed", totals.completed)
            .integer("errors", errors)
            .integer("mismatches", totals.mismatches)
            .boolean("kept_up", kept_up)
            .integer("lag_p99_us", lag_p99)
            .integer("max_lag_us", totals.lag.max())
            .integer("p50_us", totals.latency.percentile(50))
            .integer("p90_us", totals.latency.percentile(90))
            .integer("p99_us", totals.latency.percentile(99))
            .integer("p999_us", totals.latency.percentile(99.9))
            .integer("max_us", totals.latency.max())
            .integer("count", totals.latency.count())
            .text("histogram", totals.latency.encode());
        std::printf("%s\n", json.str().c_str());
    } else {
        std::printf("[client] open loop: %s arrivals over %zu connections for %.1f s\n",
                    o.poisson ? "poisson" : "fixed", o.connections, o.duration_s);
        std::printf("[client] achieved %.1f/s of target %.1f/s (%llu of %llu requests echoed and checked, "
                    "%llu errors, %llu mismatches)\n",
                    achieved, o.rate, static_cast<unsigned long long>(totals.completed),
                    static_cast<unsigned long long>(totals.sent), static_cast<unsigned long long>(errors),
                    static_cast<unsigned long long>(totals.mismatches));
        std::printf("[client] latency from the intended send (us): p50 %llu  p90 %llu  p99 %llu  p99.9 %llu  "
                    "max %llu  (n=%llu)\n",
                    static_cast<unsigned long long>(totals.latency.percentile(50)),
                    static_cast<unsigned long long>(totals.latency.percentile(90)),
                    static_cast<unsigned long long>(totals.latency.percentile(99)),
                    static_cast<unsigned long long>(totals.latency.percentile(99.9)),
                    static_cast<unsigned long long>(totals.latency.max()),
                    static_cast<unsigned long long>(totals.latency.count()));
        if (!kept_up) {
            std::printf("[client] client could not keep up: it handed requests out %.3f ms behind schedule "
                        "at p99 (max %.3f ms); these figures describe this client, not the server\n",
                        static_cast<double>(lag_p99) / 1000, static_cast<double>(totals.lag.max()) / 1000);
        } else if (achieved < kKeptUpRate * o.rate) {
            std::printf("[client] the server fell behind: the client kept to its schedule, the echoes did not\n");
        }
    }
    return totals.mismatches > 0 ? 1 : 0;
}

int run_client(int argc, char** argv) {
    const Options o = parse_args(argc, argv);
    if (o.help) {
        std::fputs(kUsage, stdout);
        return 0;
    }
    // MSG_NOSIGNAL covers our sends; ignoring SIGPIPE covers everything else.
    ::signal(SIGPIPE, SIG_IGN);
    if (o.tls && !ECHO_WITH_OPENSSL) {
        throw Fatal("--tls: this build has no TLS (built without OpenSSL)");
    }
    const Connector connector(o);  // resolves --host; with --tls, the TLS context
    if (o.handshakes > 0) return run_handshakes(o, connector);
    if (o.open_loop) return run_open_loop(o, connector);
    if (o.load) return run_load(o, connector);
    if (o.stream > 0) return run_stream(o, connector);
    if (o.count == 1 && o.size == 0 && !o.json) return run_single(o, connector);
    return run_count(o, connector);
}

}  // namespace

int main(int argc, char** argv) {
    try {
        return run_client(argc, argv);
    } catch (const Mismatch& e) {
        std::fprintf(stderr, "[client] error: %s\n", e.what());
        return 1;
    } catch (const std::exception& e) {
        std::fprintf(stderr, "[client] error: %s\n", e.what());
        return 2;
    }
}
