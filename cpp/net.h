// net.h - the small socket helpers both programs share (one copy, never two).
//
// Fatal and sys_error: every failure becomes one line that names the failing
// system call ("bind 127.0.0.1:5052: Address already in use"). Fd owns one
// descriptor (RAII: closed exactly once, on every path). parse_number reads a
// flag's integer or says which flag was bad. set_nodelay and raise_fd_limit
// are the two socket settings both the server and the load client need. With
// ECHO_WITH_OPENSSL the OpenSSL deleters live here too; without it this
// header needs nothing beyond POSIX and the standard library.
#ifndef ECHO_NET_H
#define ECHO_NET_H

#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <cerrno>
#include <charconv>
#include <cstring>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>

#ifndef ECHO_WITH_OPENSSL
#define ECHO_WITH_OPENSSL 0
#endif
#if ECHO_WITH_OPENSSL
#include <openssl/ssl.h>
#endif

namespace echo {

// A failure reported as one line, "[server] error: ..." or "[client] error: ...",
// and exit status 2.
struct Fatal : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// strerror() may share a static buffer between threads; the GNU strerror_r
// returns a pointer to the message and is safe to call from every thread.
inline std::string errno_text(int err) {
    std::array<char, 128> buf{};
    return strerror_r(err, buf.data(), buf.size());
}

// Error text always names the failing system call: "connect 127.0.0.1:5052: ...".
inline Fatal sys_error(const char* call, const std::string& where, int err) {
    return Fatal(std::string(call) + " " + where + ": " + errno_text(err));
}

// The same with the current errno, read first: building strings may clobber it.
inline Fatal sys_error(const char* call, const std::string& where) {
    const int err = errno;
    return sys_error(call, where, err);
}

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

// A flag's integer in lo..hi, or a Fatal naming the flag and the range.
inline unsigned long long parse_number(std::string_view flag, std::string_view text,
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

// Nagle would hold a small message back waiting for an ACK (up to 40 ms with
// delayed ACKs): fatal for an echo's latency. False if setsockopt failed.
inline bool set_nodelay(int fd) {
    const int on = 1;
    return ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on) == 0;
}

// 10k connections need 10k descriptors; the default soft limit is often
// 1024. Raising soft up to hard needs no privilege.
inline void raise_fd_limit() {
    rlimit lim{};
    if (::getrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_cur < lim.rlim_max) {
        lim.rlim_cur = lim.rlim_max;
        ::setrlimit(RLIMIT_NOFILE, &lim);
    }
}

#if ECHO_WITH_OPENSSL
// RAII for OpenSSL's objects: SSL_CTX_free/SSL_free exactly once, on every path.
struct SslCtxFree {
    void operator()(SSL_CTX* ctx) const noexcept { SSL_CTX_free(ctx); }
};
struct SslFree {
    void operator()(SSL* ssl) const noexcept { SSL_free(ssl); }
};
using SslCtxPtr = std::unique_ptr<SSL_CTX, SslCtxFree>;
using SslPtr = std::unique_ptr<SSL, SslFree>;
#endif  // ECHO_WITH_OPENSSL

}  // namespace echo

#endif  // ECHO_NET_H
