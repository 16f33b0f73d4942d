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
//   bind/listen -> announce -> accept -> [TLS handshake] -> echo until EOF -> close.
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
// TLS (--tls-cert/--tls-key; OpenSSL 3, compiled in when ECHO_WITH_OPENSSL)
//   The same loop, with one SSL object per connection bound to its socket.
//   Every OpenSSL call is non-blocking and may answer "want read" or "want
//   write"; that answer becomes the connection's epoll interest, so the
//   handshake, the echo and the closing close_notify all advance one
//   readiness event at a time, and a client that stalls its handshake blocks
//   nobody (it is closed at its deadline, --tls-handshake-timeout). The echo
//   reuses the pending-output buffer and --max-pending backpressure above on
//   the decrypted byte stream. Traps of its own: SSL_read may need the socket
//   *writable* and SSL_write may need it *readable*; OpenSSL may hold
//   decrypted bytes that epoll will never report again (see "buffered
//   input"); and a TCP EOF without close_notify is a truncation, not an end
//   of stream.
//
// Limits
//   One connection is pinned to one thread; SO_REUSEPORT hashes connections,
//   so it balances well with many clients but cannot rebalance a few heavy
//   ones. Linux-only (epoll, eventfd, accept4, SO_REUSEPORT). TLS costs a
//   handshake per connection (public-key operations on the loop thread, so
//   a burst of handshakes delays the echoes of that loop's other clients),
//   an encrypt and a decrypt per byte, and OpenSSL's per-connection state
//   and record buffers (about 55 KiB of RSS per idle connection, measured;
//   SSL_MODE_RELEASE_BUFFERS saved only 10 KiB of it, so it is off). It
//   serves one certificate, asks for no client certificate, and reloads
//   nothing without a restart.

#include <arpa/inet.h>
#include <fcntl.h>
#include <netdb.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>  // NOLINT(modernize-deprecated-headers): POSIX (sigset_t, sigwait), not C's <csignal>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <cerrno>
#include <charconv>
#include <chrono>
#include <climits>
#include <cstdint>
#include <cstdio>
#include <cstring>
#include <deque>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

// CMake defines ECHO_WITH_OPENSSL=1 when it found OpenSSL 3 (and -DECHO_TLS
// is not OFF). Without it the program is the plain TCP server and refuses
// the TLS flags; the OpenSSL code sits in one #if block (section "TLS"),
// with stand-ins for the other build, so the event loop is written once.
#ifndef ECHO_WITH_OPENSSL
#define ECHO_WITH_OPENSSL 0
#endif
#if ECHO_WITH_OPENSSL
#include <openssl/err.h>
#include <openssl/ssl.h>
#endif

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

constexpr int kMaxEvents = 256;        // epoll events fetched per wake-up
constexpr int kReadsPerEvent = 4;      // fairness: reads per readiness event
constexpr int kAcceptsPerEvent = 128;  // fairness: accepts per readiness event
constexpr auto kAcceptPause = std::chrono::milliseconds(100);  // after EMFILE
// A TLS record carries at most 16 KiB, a quarter of the default read buffer:
// four times the reads keep about the same bytes per event as plain TCP.
constexpr int kTlsReadsPerEvent = 4 * kReadsPerEvent;
constexpr double kMaxHandshakeTimeoutS = 1e6;

// ---------------------------------------------------------------------------
// Errors and logging
// ---------------------------------------------------------------------------

// ---------------------------------------------------------------------------
// Command line
// ---------------------------------------------------------------------------

struct Config {
    std::string host = "127.0.0.1";
    uint16_t port = 5052;
    size_t buffer_size = size_t{64} * 1024;
    unsigned threads = 1;
    size_t max_pending = size_t{1024} * 1024;
    std::string tls_cert;             // PEM certificate chain; empty: plain TCP
    std::string tls_key;              // PEM private key
    double handshake_timeout_s = 10;  // TLS handshakes not done by then are closed
    bool verbose = false;
    bool help = false;
    bool version = false;

    bool tls() const { return !tls_cert.empty(); }
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
  --tls-cert FILE       speak TLS 1.2/1.3 with this PEM certificate chain
  --tls-key FILE        ...and this PEM private key (both or neither)
  --tls-handshake-timeout SECONDS
                        close a connection whose TLS handshake is not done by
                        then (default 10)
  -v, --verbose         log connection open/close to stderr
  --version             print one line naming this build and its TLS library
                        ("tls=none": built without OpenSSL), and exit
  -h, --help            show this help

On start it prints "[server] listening on HOST:PORT" (IPv6 as [H]:PORT; with
TLS the line ends in (tls) too) to stdout. SIGINT/SIGTERM stop it with exit
status 0; startup errors (bad flag, bad host, port in use, unusable
certificate or key) exit with 2; an event loop failing at run time, with 1.
)";

double parse_seconds(std::string_view flag, std::string_view text) {
    double value = 0;
    const char* end = text.data() + text.size();
    const auto [ptr, ec] = std::from_chars(text.data(), end, value);
    // !(value > 0) also refuses NaN; the upper bound refuses "inf".
    if (ec != std::errc() || ptr != end || text.empty() || !(value > 0) ||
        value > kMaxHandshakeTimeoutS) {
        throw Fatal("bad value for " + std::string(flag) + ": '" + std::string(text) +
                    "' (expected seconds, a number > 0 and <= 1000000)");
    }
    return value;
}

std::string parse_path(std::string_view flag, std::string_view text) {
    if (text.empty()) throw Fatal("bad value for " + std::string(flag) + ": '' (expected a file)");
    return std::string(text);
}

// The TLS flags in a build without OpenSSL: refused by name, so a harness can
// tell "no TLS here" from a broken server (also see --version).
void require_tls_build(std::string_view flag) {
    if (!ECHO_WITH_OPENSSL) {
        throw Fatal(std::string(flag) + ": this build has no TLS (built without OpenSSL)");
    }
}

// Both or neither: a certificate without its key (or the reverse) is a typo,
// not a request for plain TCP.
void check_tls_pair(const Config& cfg) {
    if (cfg.tls_cert.empty() && !cfg.tls_key.empty()) {
        throw Fatal("--tls-key needs --tls-cert (both files, or neither for plain TCP)");
    }
    if (!cfg.tls_cert.empty() && cfg.tls_key.empty()) {
        throw Fatal("--tls-cert needs --tls-key (both files, or neither for plain TCP)");
    }
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
        } else if (flag("--version")) {
            cfg.version = true;
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
        } else if (arg == "--tls-cert") {
            require_tls_build(arg);
            cfg.tls_cert = parse_path(arg, value());
        } else if (arg == "--tls-key") {
            require_tls_build(arg);
            cfg.tls_key = parse_path(arg, value());
        } else if (arg == "--tls-handshake-timeout") {
            require_tls_build(arg);
            cfg.handshake_timeout_s = parse_seconds(arg, value());
        } else if (!seen_positional && !arg.empty() && arg[0] != '-') {
            cfg.port = static_cast<uint16_t>(parse_number("PORT", arg, 0, 65535));
            seen_positional = true;
        } else {
            throw Fatal("unknown argument '" + std::string(argv[i]) + "' (try --help)");
        }
    }
    check_tls_pair(cfg);
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

// ---------------------------------------------------------------------------
// TLS
// ---------------------------------------------------------------------------

// What a TLS call on a non-blocking socket came to. want_read/want_write
// are not errors: the call needs the socket readable (or writable) first and
// must then be repeated - the event loop turns them into epoll interest.
enum class TlsIo { done, want_read, want_write, closed, failed };

#if ECHO_WITH_OPENSSL

// "OpenSSL 3.0.22": the library actually loaded, not the headers we built with.
std::string tls_library() {
    return std::string("OpenSSL ") + OpenSSL_version(OPENSSL_VERSION_STRING);
}

// OpenSSL reports failures on a per-thread error queue. This takes the oldest
// entry (the root cause; later ones only add context) as text, with its
// detail if any ("no start line (Expecting: TRUSTED CERTIFICATE)"), and
// empties the queue so that nothing stale is blamed on the next call. A
// failing system call may queue nothing: then errno tells, and no errno at
// all means the peer closed the TCP connection in mid-protocol.
std::string openssl_error_text(int err) {
    const char* data = nullptr;
    int flags = 0;
    const unsigned long code = ERR_get_error_all(nullptr, nullptr, nullptr, &data, &flags);
    std::string text;
    if (code == 0) {
        text = err != 0 ? errno_text(err) : "unexpected end of file";
    } else if (const char* reason = ERR_reason_error_string(code)) {
        text = reason;
    } else {
        std::array<char, 256> buf{};
        ERR_error_string_n(code, buf.data(), buf.size());
        text = buf.data();
    }
    if (data != nullptr && (flags & ERR_TXT_STRING) != 0 && *data != '\0') {
        text += std::string(" (") + data + ")";
    }
    ERR_clear_error();  // last: it frees the entry `data` points into
    return text;
}

// One connection's TLS state: an SSL object bound to the socket. Every call
// clears the thread's error queue first, because SSL_get_error() consults
// it: a stale entry from another connection would turn a harmless "want
// read" into a failure here.
//
// SSL_set_fd rather than memory BIOs: OpenSSL reads and writes the socket
// itself, so "want read/write" is exactly the socket readiness epoll
// watches, and no ciphertext is copied through a second pair of buffers.
// The price: its writes are plain write(2) calls, which cannot pass
// MSG_NOSIGNAL - hence SIGPIPE must be ignored process-wide (see
// block_stop_signals).
class TlsSession {
public:
    TlsSession() = default;
    explicit TlsSession(SslPtr ssl) noexcept : ssl_(std::move(ssl)) {}

    explicit operator bool() const noexcept { return ssl_ != nullptr; }

    TlsIo accept() {
        ERR_clear_error();
        const int rc = SSL_accept(ssl_.get());
        return rc == 1 ? TlsIo::done : outcome("SSL_accept", rc, errno);
    }

    // At most one record's worth of plaintext (16 KiB) per call.
    TlsIo read(char* buf, size_t cap, size_t& got) {
        ERR_clear_error();
        got = 0;
        const int rc = SSL_read_ex(ssl_.get(), buf, cap, &got);
        return rc == 1 ? TlsIo::done : outcome("SSL_read", rc, errno);
    }

    // With SSL_MODE_ENABLE_PARTIAL_WRITE a call may take less than len (one
    // record at a time). After want_read/want_write the same bytes must be
    // offered again; SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER lets them sit at
    // another address by then (our pending-output buffer).
    TlsIo write(const char* data, size_t len, size_t& done) {
        ERR_clear_error();
        done = 0;
        const int rc = SSL_write_ex(ssl_.get(), data, len, &done);
        return rc == 1 ? TlsIo::done : outcome("SSL_write", rc, errno);
    }

    // Sends our close_notify. 0 ("sent, the peer's not seen yet") and 1
    // ("both seen") are both done for us: we close without waiting for a
    // reply, which the peer is not obliged to send.
    TlsIo shutdown() {
        ERR_clear_error();
        const int rc = SSL_shutdown(ssl_.get());
        return rc >= 0 ? TlsIo::done : outcome("SSL_shutdown", rc, errno);
    }

    // Bytes OpenSSL has taken off the socket but not handed to us yet
    // (decrypted or not). epoll cannot see them: the socket may be empty.
    bool has_buffered_input() const { return SSL_has_pending(ssl_.get()) == 1; }

    // "TLSv1.3 TLS_AES_256_GCM_SHA384", for the verbose close line.
    std::string describe() const {
        return std::string(SSL_get_version(ssl_.get())) + " " + SSL_get_cipher_name(ssl_.get());
    }

    // Why the last call came to closed/failed: "SSL_read: unexpected eof while reading".
    const std::string& failure() const { return failure_; }

private:
    TlsIo outcome(const char* call, int rc, int err) {
        switch (SSL_get_error(ssl_.get(), rc)) {
        case SSL_ERROR_WANT_READ:
            return TlsIo::want_read;
        case SSL_ERROR_WANT_WRITE:
            return TlsIo::want_write;
        case SSL_ERROR_ZERO_RETURN:  // the peer's close_notify: a clean end of stream
            ERR_clear_error();
            failure_ = std::string(call) + ": close_notify";
            return TlsIo::closed;
        default:  // SSL_ERROR_SYSCALL, SSL_ERROR_SSL: the connection is unusable
            failure_ = std::string(call) + ": " + openssl_error_text(err);
            return TlsIo::failed;
        }
    }

    SslPtr ssl_;
    std::string failure_;
};

// The server's one SSL_CTX: certificate, key and protocol settings. Built
// before binding (a bad certificate never leaves a half-started server),
// then only read: the loops share it, which OpenSSL 3 allows from many
// threads as long as nobody changes it. Each SSL object it makes is used by
// its connection's loop thread alone.
class TlsContext {
public:
    TlsContext(const std::string& cert, const std::string& key)
        : ctx_(SSL_CTX_new(TLS_server_method())) {
        if (!ctx_) throw Fatal("SSL_CTX_new: " + openssl_error_text(0));
        // TLS 1.2 and 1.3 only; default ciphers; a client cannot ask for
        // renegotiation (a CPU-burning lever and a source of "SSL_write
        // wants read" in the middle of the echo).
        if (SSL_CTX_set_min_proto_version(ctx_.get(), TLS1_2_VERSION) != 1) {
            throw Fatal("SSL_CTX_set_min_proto_version: " + openssl_error_text(0));
        }
        SSL_CTX_set_options(ctx_.get(), SSL_OP_NO_RENEGOTIATION);
        SSL_CTX_set_mode(ctx_.get(),
                         SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
        load_pair(cert, key);
    }

    // A session for a freshly accepted socket, or an empty one and why not.
    TlsSession session(int fd, std::string& failure) const {
        ERR_clear_error();
        SslPtr ssl(SSL_new(ctx_.get()));
        if (!ssl) {
            failure = "SSL_new: " + openssl_error_text(0);
            return {};
        }
        if (SSL_set_fd(ssl.get(), fd) != 1) {
            failure = "SSL_set_fd: " + openssl_error_text(0);
            return {};
        }
        SSL_set_accept_state(ssl.get());
        return TlsSession(std::move(ssl));
    }

private:
    // Every mistake becomes one line naming the flag, the file and what is
    // wrong, in the words the Python servers use (impls/cli.py): OpenSSL's
    // own "PEM lib" or "unsupported" would name neither.
    void load_pair(const std::string& cert, const std::string& key) {
        check_readable("--tls-cert", cert);
        check_readable("--tls-key", key);
        if (SSL_CTX_use_certificate_chain_file(ctx_.get(), cert.c_str()) != 1) {
            throw Fatal("--tls-cert " + cert + ": " + cert_error());
        }
        // An encrypted key would make OpenSSL prompt on the terminal; a
        // server must fail instead, never wait for a person.
        bool asked_passphrase = false;
        SSL_CTX_set_default_passwd_cb(ctx_.get(), no_passphrase);
        SSL_CTX_set_default_passwd_cb_userdata(ctx_.get(), &asked_passphrase);
        const bool key_loaded =
            SSL_CTX_use_PrivateKey_file(ctx_.get(), key.c_str(), SSL_FILETYPE_PEM) == 1;
        SSL_CTX_set_default_passwd_cb_userdata(ctx_.get(), nullptr);  // no dangling pointer
        if (!key_loaded) throw Fatal("--tls-key " + key + ": " + key_error(cert, asked_passphrase));
        // Loading compared the key with a certificate of the key's type;
        // this catches the rest (e.g. an RSA key for an EC certificate).
        if (SSL_CTX_check_private_key(ctx_.get()) != 1) {
            ERR_clear_error();
            throw Fatal("--tls-key " + key + ": key does not match the certificate " + cert);
        }
    }

    static std::string cert_error() {
        if (!oldest_error_is_not_pem()) return openssl_error_text(0);
        ERR_clear_error();
        return "not a PEM certificate";
    }

    static std::string key_error(const std::string& cert, bool asked_passphrase) {
        std::string why;
        if (key_mismatch()) {
            why = "key does not match the certificate " + cert;
        } else if (asked_passphrase) {
            why = "the key is encrypted; give an unencrypted PEM key";
        } else if (oldest_error_is_not_pem()) {
            why = "not a PEM private key";
        } else {
            return openssl_error_text(0);
        }
        ERR_clear_error();
        return why;
    }

    static int no_passphrase(char* /*buf*/, int /*size*/, int /*rwflag*/, void* asked) {
        if (asked != nullptr) *static_cast<bool*>(asked) = true;
        return 0;  // no passphrase: the key does not load
    }

    // open(2) first: its errno ("No such file or directory", "Permission
    // denied", "Is a directory") says more than OpenSSL's "system lib".
    static void check_readable(const char* flag, const std::string& path) {
        const Fd file(::open(path.c_str(), O_RDONLY | O_CLOEXEC));
        if (file.get() < 0) throw Fatal(std::string(flag) + " " + path + ": " + errno_text(errno));
        char probe = 0;
        if (::read(file.get(), &probe, 1) < 0) {
            throw Fatal(std::string(flag) + " " + path + ": " + errno_text(errno));
        }
    }

    // The file holds no PEM block of the kind asked for (or none at all).
    static bool oldest_error_is_not_pem() {
        const unsigned long code = ERR_peek_error();
        const int reason = ERR_GET_REASON(code);
        return (ERR_GET_LIB(code) == ERR_LIB_PEM && reason == PEM_R_NO_START_LINE) ||
               (ERR_GET_LIB(code) == ERR_LIB_OSSL_DECODER && reason == ERR_R_UNSUPPORTED);
    }

    static bool key_mismatch() {
        const unsigned long code = ERR_peek_last_error();
        const int reason = ERR_GET_REASON(code);
        return ERR_GET_LIB(code) == ERR_LIB_X509 &&
               (reason == X509_R_KEY_VALUES_MISMATCH || reason == X509_R_KEY_TYPE_MISMATCH);
    }

    SslCtxPtr ctx_;
};

#else  // built without OpenSSL

// parse_args refuses the TLS flags in this build, so no TlsContext or
// non-empty TlsSession is ever made; these stand-ins only let the event loop
// be written once for both builds.
std::string tls_library() { return "none"; }

class TlsSession {
public:
    explicit operator bool() const noexcept { return false; }
    TlsIo accept() { return TlsIo::failed; }
    TlsIo read(char* /*buf*/, size_t /*cap*/, size_t& got) {
        got = 0;
        return TlsIo::failed;
    }
    TlsIo write(const char* /*data*/, size_t /*len*/, size_t& done) {
        done = 0;
        return TlsIo::failed;
    }
    TlsIo shutdown() { return TlsIo::failed; }
    bool has_buffered_input() const { return false; }
    std::string describe() const { return {}; }
    const std::string& failure() const { return failure_; }

private:
    std::string failure_;
};

class TlsContext {
public:
    TlsContext(const std::string& /*cert*/, const std::string& /*key*/) {
        throw Fatal("this build has no TLS (built without OpenSSL)");
    }
    TlsSession session(int /*fd*/, std::string& failure) const {
        failure = "this build has no TLS";
        return {};
    }
};

#endif  // ECHO_WITH_OPENSSL

// The context when --tls-cert is given, else none (plain TCP).
std::unique_ptr<const TlsContext> make_tls_context(const Config& cfg) {
    if (!cfg.tls()) return nullptr;
    return std::make_unique<const TlsContext>(cfg.tls_cert, cfg.tls_key);
}

// ---------------------------------------------------------------------------
// One connection
// ---------------------------------------------------------------------------

// A TLS connection goes handshake -> open -> closing (our close_notify); a
// plain TCP connection is open from the start and closes straight from it.
enum class Phase : uint8_t { handshake, open, closing };

struct Connection {
    Connection(Fd socket, uint64_t serial_number) : fd(std::move(socket)), serial(serial_number) {}

    Fd fd;
    // Empty for plain TCP. Declared after fd, so destroyed before it:
    // SSL_free leaves the socket alone (SSL_set_fd does not hand OpenSSL
    // ownership), then Fd closes it.
    TlsSession tls;
    uint64_t serial;            // tells this connection from a later one on the same fd
    std::vector<char> out;      // bytes read but not yet accepted by the peer...
    size_t out_head = 0;        // ...starting at out[out_head]
    uint32_t events = EPOLLIN;  // what epoll currently watches for us
    Phase phase = Phase::open;
    bool peer_done = false;     // the client is done sending: FIN, or TLS close_notify
    bool throttled = false;     // backpressure: not reading until output drains
    // TLS only: what the last OpenSSL call is waiting for.
    bool step_wants_write = false;  // handshake/shutdown: socket writable (else readable)
    bool read_wants_write = false;  // SSL_read needs the socket writable
    bool write_wants_read = false;  // SSL_write needs the socket readable
    bool input_buffered = false;    // OpenSSL holds input epoll will not report
    bool in_input_list = false;     // ...and the loop has it on its list
    int error = 0;              // errno that ended the connection, 0 = clean EOF
    std::string why;            // what ended it, when errno does not say (TLS)
    uint64_t echoed = 0;        // bytes sent back (for --verbose)
    std::string peer;           // "ip:port", filled only with --verbose

    size_t pending() const { return out.size() - out_head; }
};

// The same bytes over TLS: SSL_write until it wants something. A short
// count is as normal as with send(): the rest is queued.
bool send_some_tls(Connection& c, const char* data, size_t len, size_t& done) {
    done = 0;
    c.write_wants_read = false;
    while (done < len) {
        size_t n = 0;
        const TlsIo io = c.tls.write(data + done, len - done, n);
        if (io == TlsIo::done) {
            done += n;
        } else if (io == TlsIo::want_read || io == TlsIo::want_write) {
            c.write_wants_read = io == TlsIo::want_read;
            break;  // nothing lost: OpenSSL expects the same bytes again
        } else {
            c.why = c.tls.failure();
            return false;
        }
    }
    c.echoed += done;
    return true;
}

// Sends as much of data[0, len) as the kernel takes right now; `done` says
// how much. A short count is normal (the socket buffer is full) - the rest
// waits for EPOLLOUT. Returns false on a real error (ECONNRESET, EPIPE...).
//
// MSG_NOSIGNAL: writing to a connection the peer has reset raises SIGPIPE,
// whose default action kills the whole process. With the flag (and SIGPIPE
// ignored as a second line of defence - the only one for TLS, whose writes
// OpenSSL makes) we get EPIPE instead.
bool send_some(Connection& c, const char* data, size_t len, size_t& done) {
    if (c.tls) return send_some_tls(c, data, len, done);
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
    // tls: the shared context, or nullptr for plain TCP. It must outlive the loop.
    EventLoop(unsigned id, Fd listener, int stop_fd, const Config& cfg, const TlsContext* tls)
        : id_(id), cfg_(cfg), listener_(std::move(listener)), stop_fd_(stop_fd),
          inbuf_(cfg.buffer_size), tls_(tls),
          handshake_timeout_(std::chrono::duration_cast<Clock::duration>(
              std::chrono::duration<double>(cfg.handshake_timeout_s))) {
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
            serve_buffered_input();
            expire_handshakes();
            resume_accepting_if_due();
        }
    }

private:
    // A connection named so that it can be looked up later, safely: by then
    // it may be closed and its descriptor number reused by a newer one.
    struct ConnRef {
        int fd;
        uint64_t serial;
    };
    struct Deadline {
        Clock::time_point at;
        ConnRef conn;
    };

    bool watch_fd(int op, int fd, uint32_t events) {
        epoll_event ev{};
        ev.events = events;
        ev.data.fd = fd;
        return ::epoll_ctl(epoll_.get(), op, fd, &ev) == 0;
    }

    Connection* find(ConnRef ref) const {
        const auto slot = static_cast<size_t>(ref.fd);
        if (slot >= conns_.size() || !conns_[slot] || conns_[slot]->serial != ref.serial) {
            return nullptr;
        }
        return conns_[slot].get();
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

    // How long epoll_wait may sleep: not at all while OpenSSL holds input
    // for someone, else until the next timer (accepts paused after EMFILE,
    // the oldest handshake's deadline), else until an event.
    int wait_timeout_ms() const {
        if (!buffered_input_.empty()) return 0;
        std::optional<Clock::time_point> wake;
        if (accept_paused_) wake = accept_resume_at_;
        if (!handshakes_.empty() && (!wake || handshakes_.front().at < *wake)) {
            wake = handshakes_.front().at;
        }
        if (!wake) return -1;
        const auto left = std::chrono::ceil<std::chrono::milliseconds>(*wake - Clock::now());
        return static_cast<int>(std::clamp<std::chrono::milliseconds::rep>(left.count(), 0, INT_MAX));
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
        auto conn = std::make_unique<Connection>(std::move(fd), next_serial_++);
        if (tls_ != nullptr && !start_tls(*conn)) return;
        if (!watch_fd(EPOLL_CTL_ADD, key, EPOLLIN)) {
            log("epoll_ctl: " + errno_text(errno));
            return;
        }
        // The handshake's deadline. With one timeout for all, deadlines come
        // in accept order, so a FIFO queue is already sorted: the loop only
        // ever looks at its front (see expire_handshakes).
        if (conn->phase == Phase::handshake) {
            handshakes_.push_back({Clock::now() + handshake_timeout_, {key, conn->serial}});
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

    // --- TLS handshake -----------------------------------------------------

    bool start_tls(Connection& c) {
        std::string failure;
        c.tls = tls_->session(c.fd.get(), failure);
        if (!c.tls) {
            log(failure);  // out of memory, most likely; this client is dropped
            return false;
        }
        c.phase = Phase::handshake;
        return true;
    }

    // One step of the non-blocking SSL_accept. A client sending garbage, or
    // plain TCP, fails here; that is its problem, logged at --verbose only
    // (a port scanner must not flood stderr).
    bool handshake(Connection& c) {
        const TlsIo io = c.tls.accept();
        if (io == TlsIo::done) {
            c.phase = Phase::open;
            return true;
        }
        if (io == TlsIo::want_read || io == TlsIo::want_write) {
            c.step_wants_write = io == TlsIo::want_write;
            return true;
        }
        c.why = c.tls.failure();
        return false;
    }

    // Closes the handshakes past their deadline. The queue is in deadline
    // order; entries of connections that finished their handshake (or
    // closed) are dropped as they reach the front. So each connection costs
    // O(1) here once, and the front, when there is one, is a live handshake
    // whose deadline is epoll_wait's timeout: it is closed on time, to the
    // millisecond, however idle the loop.
    void expire_handshakes() {
        if (handshakes_.empty()) return;
        const auto now = Clock::now();
        while (!handshakes_.empty()) {
            const Deadline& next = handshakes_.front();
            Connection* c = find(next.conn);
            const bool waiting = c != nullptr && c->phase == Phase::handshake;
            if (waiting && next.at > now) return;
            if (waiting) {
                c->why = "TLS handshake not done within " +
                         format_seconds(cfg_.handshake_timeout_s);
                close_connection(conns_[static_cast<size_t>(next.conn.fd)]);
            }
            handshakes_.pop_front();
        }
    }

    static std::string format_seconds(double seconds) {
        std::array<char, 32> text{};
        std::snprintf(text.data(), text.size(), "%g s", seconds);
        return text.data();
    }

    // --- TLS: buffered input -----------------------------------------------

    // Trap: SSL_read takes whole records off the socket, so when a read
    // stops early (the per-event budget, or backpressure) OpenSSL may keep
    // plaintext that the socket no longer shows. Level-triggered epoll would
    // never report this connection again and its bytes would be stranded.
    // Such connections go on a list that the loop serves right after the
    // events, with a zero epoll_wait timeout while the list is not empty.
    void remember_buffered_input(Connection& c) {
        if (c.in_input_list) return;
        c.in_input_list = true;
        buffered_input_.push_back({c.fd.get(), c.serial});
    }

    void serve_buffered_input() {
        if (buffered_input_.empty()) return;
        due_input_.swap(buffered_input_);  // serving may add to the (now empty) list
        for (const ConnRef ref : due_input_) {
            Connection* c = find(ref);
            if (c == nullptr) continue;  // closed meanwhile
            c->in_input_list = false;
            serve(ref.fd, EPOLLIN);
        }
        due_input_.clear();  // keeps capacity: no allocation per loop
    }

    // --- TLS: close_notify -------------------------------------------------

    // The client's close_notify arrived and every echoed byte went out: send
    // ours, then close. Returns true while SSL_shutdown waits for the socket.
    bool send_close_notify(Connection& c) {
        const TlsIo io = c.tls.shutdown();
        if (io == TlsIo::want_read || io == TlsIo::want_write) {
            c.step_wants_write = io == TlsIo::want_write;
            return true;
        }
        if (io != TlsIo::done) c.why = c.tls.failure();
        return false;
    }

    // --- echo --------------------------------------------------------------

    void serve(int fd, uint32_t events) {
        auto& owner = conns_[static_cast<size_t>(fd)];
        if (!pump(*owner, events)) {
            close_connection(owner);
        } else if (owner->input_buffered && readable(*owner)) {
            remember_buffered_input(*owner);
        }
    }

    // One readiness event for one connection. Returns false when the
    // connection is finished (clean or not) and must be closed.
    bool pump(Connection& c, uint32_t events) {
        if (c.phase == Phase::handshake) {
            if (!handshake(c)) return false;
            // TLS 1.3 clients send data right behind their Finished: read it
            // now rather than one epoll_wait later.
            if (c.phase == Phase::open) events |= EPOLLIN;
        }
        if (c.phase == Phase::open && !echo_step(c, events)) return false;
        if (c.phase == Phase::closing && !send_close_notify(c)) return false;
        return update_interest(c);
    }

    bool echo_step(Connection& c, uint32_t events) {
        // EPOLLERR/EPOLLHUP are reported even when not asked for; letting
        // them drive a send or recv surfaces the actual error (or EOF).
        // Over TLS a write may wait for the socket to be readable and a read
        // for it to be writable; for plain TCP both flags stay false.
        const uint32_t trouble = EPOLLERR | EPOLLHUP;
        const uint32_t can_write = (c.write_wants_read ? EPOLLIN : EPOLLOUT) | trouble;
        const uint32_t can_read = (c.read_wants_write ? EPOLLOUT : EPOLLIN) | trouble;
        if ((events & can_write) && c.pending() > 0 && !flush(c)) return false;
        if ((events & can_read) && readable(c) && !read_and_echo(c)) return false;
        // Half-close: the client said it is done sending (FIN, or TLS
        // close_notify). Only close once every byte it sent has been echoed -
        // never drop pending data. TLS then says goodbye with close_notify.
        if (c.peer_done && c.pending() == 0) {
            if (!c.tls) return false;
            c.phase = Phase::closing;
        }
        return true;
    }

    bool readable(const Connection& c) const { return !c.peer_done && !c.throttled; }

    bool read_and_echo(Connection& c) {
        if (c.tls) return read_and_echo_tls(c);
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

    // The TCP loop above, through OpenSSL. No "short read means empty"
    // shortcut here: SSL_read returns one record at a time, so a short read
    // says nothing about the socket. Reading goes on until OpenSSL wants the
    // socket (drained), or the budget is spent, or backpressure stops it.
    bool read_and_echo_tls(Connection& c) {
        c.read_wants_write = false;
        c.input_buffered = false;
        for (int reads = 0; reads < kTlsReadsPerEvent && readable(c); ++reads) {
            size_t n = 0;
            const TlsIo io = c.tls.read(inbuf_.data(), inbuf_.size(), n);
            if (io == TlsIo::done) {
                if (!echo(c, inbuf_.data(), n)) return false;
            } else if (io == TlsIo::closed) {
                c.peer_done = true;  // close_notify: a clean end of the client's stream
                c.why = "close_notify";
            } else if (io == TlsIo::failed) {
                // Includes a TCP EOF or reset without close_notify: a
                // truncated stream is an error, so no close_notify back.
                c.why = c.tls.failure();
                return false;
            } else {
                c.read_wants_write = io == TlsIo::want_write;
                return true;  // epoll reports the socket when there is more
            }
        }
        c.input_buffered = !c.peer_done && c.tls.has_buffered_input();
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
    // connection would wake us in a busy loop. Over TLS the same, with the
    // socket readiness each OpenSSL call asked for: a handshake or shutdown
    // step watches exactly what it wants, and a read (write) that needs the
    // socket writable (readable) swaps its interest until it gets it.
    uint32_t wanted_events(const Connection& c) const {
        if (c.phase != Phase::open) return c.step_wants_write ? EPOLLOUT : EPOLLIN;
        const bool reading = readable(c);
        const bool writing = c.pending() > 0;
        const bool in = (reading && !c.read_wants_write) || (writing && c.write_wants_read);
        const bool out = (writing && !c.write_wants_read) || (reading && c.read_wants_write);
        return (in ? EPOLLIN : 0u) | (out ? EPOLLOUT : 0u);
    }

    bool update_interest(Connection& c) {
        const uint32_t want = wanted_events(c);
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
    //
    // TLS: the SSL object goes first, with no I/O: after a failure or a
    // timeout no close_notify is due, and after the client's close_notify
    // ours has already been sent.
    void close_connection(std::unique_ptr<Connection>& owner) {
        if (cfg_.verbose) {
            const Connection& c = *owner;
            std::string why = !c.why.empty() ? c.why : c.error ? errno_text(c.error) : "eof";
            if (c.tls && c.phase != Phase::handshake) why += ", " + c.tls.describe();
            log("close " + c.peer + " (" + why + ", " + std::to_string(c.echoed) +
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
    uint64_t next_serial_ = 0;
    bool accept_paused_ = false;  // listener temporarily unwatched (EMFILE)
    bool fd_starved_ = false;     // log EMFILE once per episode, not per retry
    Clock::time_point accept_resume_at_{};
    const TlsContext* tls_;                   // shared by all loops; nullptr: plain TCP
    Clock::duration handshake_timeout_;
    std::deque<Deadline> handshakes_;         // TLS handshakes, in deadline order
    std::vector<ConnRef> buffered_input_;     // TLS input epoll cannot see
    std::vector<ConnRef> due_input_;          // the list being served (reused)
};

// ---------------------------------------------------------------------------
// Threads and shutdown
// ---------------------------------------------------------------------------

std::atomic<bool> g_loop_failed{false};

// Block SIGINT/SIGTERM before any thread exists, so every thread inherits the
// mask and the signals stay pending until main collects them with sigwait().
// No async signal handler means no async-signal-safety trap, and no EINTR
// sprinkled through the loops. SIGPIPE is ignored for good, process-wide:
// plain TCP sends pass MSG_NOSIGNAL, but OpenSSL writes a TLS socket with
// write(2), which cannot, so a client resetting mid-echo would otherwise
// kill the server. A disposition is per process, so SIG_IGN here covers
// every loop thread started later.
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
    if (cfg.version) {
        std::printf("server (echo, C++17): tls=%s\n", tls_library().c_str());
        return 0;
    }
    // Certificate and key first: a bad one must not leave a half-started
    // server. Declared before the loops, which borrow it, so it outlives them.
    const std::unique_ptr<const TlsContext> tls = make_tls_context(cfg);
    const sigset_t stop_signals = block_stop_signals();
    raise_fd_limit();

    // bind/listen: claim the port, then one SO_REUSEPORT listener per loop.
    Endpoint ep = resolve_listen_address(cfg.host, cfg.port);
    set_port(ep, claim_port(ep));
    const Fd stop(::eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK));
    if (stop.get() < 0) throw sys_error("eventfd", "(stop signal)");
    std::vector<std::unique_ptr<EventLoop>> loops;
    for (unsigned i = 0; i < cfg.threads; ++i) {
        loops.push_back(
            std::make_unique<EventLoop>(i, make_listener(ep), stop.get(), cfg, tls.get()));
    }

    // announce: only now, when connecting can no longer fail. Flush, because
    // stdout to a pipe is block-buffered and the harness is waiting for it.
    std::printf("[server] listening on %s%s\n", format_endpoint(ep).c_str(), tls ? " (tls)" : "");
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
