// client.cpp - TCP echo client: one message, N timed round trips, a stream,
// or a load test.
//
// Concurrency model
//   Single and --count modes use one connection and one thread: send a
//   message, read its echo back, repeat. --stream also uses one connection,
//   writing and reading at the same time until every byte is back. --load
//   opens many connections and drives them all from one epoll loop per thread
//   (--threads), each connection keeping exactly one message in flight.
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
#include <unistd.h>

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
#include <exception>
#include <memory>
#include <stdexcept>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

namespace {

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

// Reported as one line "[client] error: ..."; exit status 2.
struct Fatal : std::runtime_error {
    using std::runtime_error::runtime_error;
};

// The echo differed from what we sent; exit status 1.
struct Mismatch : std::runtime_error {
    using std::runtime_error::runtime_error;
};

std::string errno_text(int err) {
    std::array<char, 128> buf{};
    return strerror_r(err, buf.data(), buf.size());  // GNU variant, thread-safe
}

// Error text names the failing call: "connect 127.0.0.1:5052: Connection refused".
Fatal sys_error(const char* call, const std::string& where, int err) {
    return Fatal(std::string(call) + " " + where + ": " + errno_text(err));
}

// ---------------------------------------------------------------------------
// RAII for file descriptors
// ---------------------------------------------------------------------------

// Owns one descriptor and closes it exactly once; move-only.
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

    // Never retry close() on EINTR: on Linux the descriptor is gone anyway.
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

struct Options {
    std::string host = "127.0.0.1";
    uint16_t port = 5052;
    std::string message = "Hello from C++!";
    uint64_t count = 1;
    size_t size = 0;  // 0: send --message; otherwise random payload of this size
    bool json = false;
    bool load = false;
    uint64_t stream = 0;  // --stream BYTES; 0: not a stream
    size_t chunk = size_t{64} * 1024;
    size_t connections = 100;
    double duration_s = 5.0;
    double warmup_s = 0.0;
    unsigned threads = 1;
    double timeout_s = 10.0;
    bool help = false;
};

constexpr const char* kUsage = R"(usage: client [HOST [PORT [MESSAGE]]] [options]

TCP echo client.

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

common:
  --timeout S       give up on a connect or an echo after S seconds (default 10)
  -h, --help        show this help

Exit status: 0 ok, 1 echo mismatch, 2 other errors (refused, bad flags, ...).
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

double parse_seconds(std::string_view flag, std::string_view text, bool allow_zero) {
    const std::string copy(text);
    char* end = nullptr;
    const double value = std::strtod(copy.c_str(), &end);
    if (copy.empty() || *end != '\0' || !std::isfinite(value) || value < 0 ||
        (value == 0 && !allow_zero) || value > 1e6) {
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
    if (o.load && !size_given) o.size = 64;
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

// Nagle would hold a small message back waiting for an ACK (up to 40 ms with
// delayed ACKs): fatal for latency measurements.
void set_nodelay(int fd) {
    const int on = 1;
    ::setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
}

// 10k connections need 10k descriptors; the soft limit is often 1024.
void raise_fd_limit() {
    rlimit lim{};
    if (::getrlimit(RLIMIT_NOFILE, &lim) == 0 && lim.rlim_cur < lim.rlim_max) {
        lim.rlim_cur = lim.rlim_max;
        ::setrlimit(RLIMIT_NOFILE, &lim);
    }
}

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

// Log-linear latency histogram in nanoseconds: exact below 2048 ns, then
// 1024 buckets per power of two (<= 0.1% error). 56k counters cover any
// uint64 value, recording is two instructions, and nothing is allocated
// after construction - it can take millions of samples per second.
class Histogram {
public:
    Histogram() : buckets_(kBuckets, 0) {}

    void record(uint64_t ns) {
        ++buckets_[index(ns)];
        ++count_;
        min_ = std::min(min_, ns);
        max_ = std::max(max_, ns);
    }

    void merge(const Histogram& other) {
        for (size_t i = 0; i < kBuckets; ++i) buckets_[i] += other.buckets_[i];
        count_ += other.count_;
        min_ = std::min(min_, other.min_);
        max_ = std::max(max_, other.max_);
    }

    uint64_t count() const { return count_; }
    uint64_t min() const { return count_ ? min_ : 0; }
    uint64_t max() const { return max_; }

    // Nearest-rank percentile: the smallest value with >= p% of samples at or below it.
    uint64_t percentile(double p) const {
        if (count_ == 0) return 0;
        const auto rank = std::max<uint64_t>(
            1, static_cast<uint64_t>(std::ceil(p / 100.0 * static_cast<double>(count_))));
        uint64_t seen = 0;
        for (size_t i = 0; i < kBuckets; ++i) {
            seen += buckets_[i];
            if (seen >= rank) return std::clamp(value_of(i), min_, max_);
        }
        return max_;
    }

private:
    static constexpr int kSubBits = 10;
    static constexpr uint64_t kSub = 1u << kSubBits;
    static constexpr size_t kBuckets = (64 - kSubBits + 1) * kSub;

    static size_t index(uint64_t v) {
        if (v < 2 * kSub) return static_cast<size_t>(v);
        const int shift = 63 - __builtin_clzll(v) - kSubBits;  // v >> shift in [kSub, 2kSub)
        return static_cast<size_t>(static_cast<uint64_t>(shift) * kSub + (v >> shift));
    }

    static uint64_t value_of(size_t i) {  // middle of the bucket
        if (i < 2 * kSub) return i;
        const auto shift = static_cast<unsigned>(i / kSub - 1);
        const uint64_t low = (i - shift * kSub) << shift;
        return low + ((uint64_t{1} << shift) >> 1);
    }

    std::vector<uint64_t> buckets_;
    uint64_t count_ = 0;
    uint64_t min_ = UINT64_MAX;
    uint64_t max_ = 0;
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
// file): poll() waits for "readable" always and "writable" while unsent
// bytes remain. EAGAIN just means "not now"; EINTR means "try again".
uint64_t round_trip(int fd, const char* msg, char* back, size_t size, int timeout_ms,
                    const std::string& where) {
    const auto start = Clock::now();
    size_t sent = 0;
    size_t got = 0;
    while (got < size) {
        if (sent < size) {
            const ssize_t n = ::send(fd, msg + sent, size - sent, MSG_NOSIGNAL);
            if (n > 0) {
                sent += static_cast<size_t>(n);  // maybe partial: loop sends the rest
            } else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
                throw sys_error("send", where, errno);
            }
        }
        pollfd p{fd, static_cast<short>(POLLIN | (sent < size ? POLLOUT : 0)), 0};
        const int ready = ::poll(&p, 1, timeout_ms);
        if (ready < 0 && errno == EINTR) continue;
        if (ready < 0) throw sys_error("poll", where, errno);
        if (ready == 0) {
            throw Fatal("recv " + where + ": timed out after " + std::to_string(timeout_ms) +
                        " ms waiting for the echo (" + std::to_string(got) + " of " +
                        std::to_string(size) + " bytes back)");
        }
        if (p.revents & (POLLIN | POLLERR | POLLHUP)) {
            const ssize_t n = ::recv(fd, back + got, size - got, 0);
            if (n > 0) {
                got += static_cast<size_t>(n);  // one recv is NOT one message
            } else if (n == 0) {
                throw Fatal("recv " + where + ": server closed the connection after " +
                            std::to_string(got) + " of " + std::to_string(size) + " bytes");
            } else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
                throw sys_error("recv", where, errno);
            }
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

// The original form: one message, three lines of output.
int run_single(const Options& o) {
    std::string where;
    const Fd fd = connect_to(resolve(o.host, o.port), timeout_ms(o), where);
    std::string back(o.message.size(), '\0');
    const uint64_t ns =
        round_trip(fd.get(), o.message.data(), back.data(), back.size(), timeout_ms(o), where);
    verify_echo(o.message.data(), back.data(), back.size(), 0);
    std::printf("[client] sent    : %s\n", python_bytes_repr(o.message).c_str());
    std::printf("[client] received: %s\n", python_bytes_repr(back).c_str());
    std::printf("[client] RTT     : %.3f ms\n", ms(ns));
    return 0;
}

int run_count(const Options& o) {
    std::string where;
    const Fd fd = connect_to(resolve(o.host, o.port), timeout_ms(o), where);
    const size_t size = o.size ? o.size : o.message.size();
    const std::vector<char> pool =
        o.size ? make_pool(size) : std::vector<char>(o.message.begin(), o.message.end());
    std::vector<char> back(size);
    Histogram latency;

    const auto start = Clock::now();
    for (uint64_t trip = 0; trip < o.count; ++trip) {
        const char* msg = pool.data() + (o.size ? trip % kPoolSlack : 0);
        latency.record(round_trip(fd.get(), msg, back.data(), size, timeout_ms(o), where));
        verify_echo(msg, back.data(), size, trip);
    }
    const double total_s = std::chrono::duration<double>(Clock::now() - start).count();
    const double mb_per_s = static_cast<double>(o.count * size) / total_s / 1e6;

    if (o.json) {
        std::printf("{\"server\":\"%s\",\"count\":%llu,\"size\":%zu,\"total_s\":%.6f,"
                    "\"mb_per_s\":%.3f,\"rtt_ms\":{\"min\":%.4f,\"p50\":%.4f,"
                    "\"p95\":%.4f,\"p99\":%.4f,\"max\":%.4f}}\n",
                    where.c_str(), static_cast<unsigned long long>(o.count), size, total_s,
                    mb_per_s, ms(latency.min()), ms(latency.percentile(50)),
                    ms(latency.percentile(95)), ms(latency.percentile(99)), ms(latency.max()));
    } else {
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
// deadlock once both sides' buffers are full), half-close after the last
// byte, and finish at the server's EOF.
int run_stream(const Options& o) {
    std::string where;
    const Fd fd = connect_to(resolve(o.host, o.port), timeout_ms(o), where);
    const StreamPattern pattern(o.chunk);
    std::vector<char> in(std::max(o.chunk, kStreamReadSize));
    uint64_t sent = 0;
    uint64_t got = 0;
    bool eof = false;
    const auto start = Clock::now();
    while (!eof) {
        pollfd p{fd.get(), static_cast<short>(POLLIN | (sent < o.stream ? POLLOUT : 0)), 0};
        const int ready = ::poll(&p, 1, timeout_ms(o));
        if (ready < 0 && errno == EINTR) continue;
        if (ready < 0) throw sys_error("poll", where, errno);
        if (ready == 0) {
            throw Fatal("stream " + where + ": nothing happened for " + std::to_string(timeout_ms(o)) +
                        " ms (" + std::to_string(sent) + " bytes sent, " + std::to_string(got) +
                        " echoed of " + std::to_string(o.stream) + ")");
        }
        if ((p.revents & POLLOUT) && sent < o.stream) {
            const auto [data, len] = pattern.run(sent, std::min<uint64_t>(o.chunk, o.stream - sent));
            const ssize_t n = ::send(fd.get(), data, len, MSG_NOSIGNAL);
            if (n > 0) {
                sent += static_cast<uint64_t>(n);
                if (sent == o.stream && ::shutdown(fd.get(), SHUT_WR) < 0) {
                    throw sys_error("shutdown", where, errno);
                }
            } else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
                throw sys_error("send", where, errno);
            }
        }
        if (p.revents & (POLLIN | POLLERR | POLLHUP)) {
            const ssize_t n = ::recv(fd.get(), in.data(), in.size(), 0);
            if (n > 0) {
                const auto len = static_cast<size_t>(n);
                if (got + len > o.stream) {
                    throw Mismatch("the server echoed " + std::to_string(got + len) +
                                   " bytes or more; only " + std::to_string(o.stream) + " were sent");
                }
                pattern.verify(got, in.data(), len);
                got += len;
            } else if (n == 0) {
                eof = true;
            } else if (errno != EAGAIN && errno != EWOULDBLOCK && errno != EINTR) {
                throw sys_error("recv", where, errno);
            }
        }
    }
    const double total_s = std::chrono::duration<double>(Clock::now() - start).count();
    if (got != o.stream) {
        throw Fatal("stream " + where + ": the server closed after echoing " + std::to_string(got) +
                    " of " + std::to_string(o.stream) + " bytes");
    }
    std::printf("{\"server\":\"%s\",\"bytes\":%llu,\"chunk\":%zu,\"total_s\":%.6f,"
                "\"mb_per_s\":%.3f}\n",
                where.c_str(), static_cast<unsigned long long>(o.stream), o.chunk, total_s,
                static_cast<double>(o.stream) / total_s / 1e6);
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

    void add(const ErrorCounts& o) {
        connect += o.connect;
        reset += o.reset;
        mismatch += o.mismatch;
        eof += o.eof;
        timeout += o.timeout;
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

// Phase 2: one epoll loop driving its share of the connections. Each has
// exactly one message in flight; when its echo is complete and verified,
// the latency is recorded and the next message goes out at once.
class LoadWorker {
public:
    LoadWorker(std::vector<Fd> sockets, const std::vector<char>& pool, size_t size,
               int timeout_ms)
        : pool_(pool), size_(size), timeout_(std::chrono::milliseconds(timeout_ms)),
          scratch_(std::min<size_t>(size, size_t{64} * 1024)) {
        conns_.reserve(sockets.size());
        for (auto& fd : sockets) {
            conns_.emplace_back();
            conns_.back().fd = std::move(fd);
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

private:
    struct Conn {
        Fd fd;
        size_t sent = 0;
        size_t got = 0;
        size_t offset = 0;  // which window of the pool is in flight
        bool want_out = false;
        Clock::time_point started;
    };

    const char* message(const Conn& c) const { return pool_.data() + c.offset; }

    void loop() {
        poller_ = Fd(::epoll_create1(EPOLL_CLOEXEC));
        if (poller_.get() < 0) throw sys_error("epoll_create1", "(load)", errno);
        for (size_t i = 0; i < conns_.size(); ++i) {
            if (!watch(conns_[i], EPOLL_CTL_ADD, i)) throw sys_error("epoll_ctl", "(load)", errno);
        }
        live_ = conns_.size();
        for (Conn& c : conns_) begin(c, Clock::now());

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
        return ::epoll_ctl(poller_.get(), op, c.fd.get(), &ev) == 0;
    }

    void handle(Conn& c, uint32_t events) {
        const uint32_t trouble = EPOLLERR | EPOLLHUP;
        if ((events & (EPOLLOUT | trouble)) && c.sent < size_) send_more(c);
        if (c.fd.get() >= 0 && (events & (EPOLLIN | trouble))) receive(c);
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
        while (c.sent < size_) {
            const ssize_t n = ::send(c.fd.get(), message(c) + c.sent, size_ - c.sent, MSG_NOSIGNAL);
            if (n > 0) {
                c.sent += static_cast<size_t>(n);
            } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
                break;
            } else if (errno != EINTR) {
                return drop(c, errors_.reset);
            }
        }
        const bool want_out = c.sent < size_;
        if (want_out != c.want_out) {
            c.want_out = want_out;
            if (!watch(c, EPOLL_CTL_MOD, static_cast<size_t>(&c - conns_.data()))) {
                drop(c, errors_.reset);
            }
        }
    }

    // Short reads: the echo arrives in arbitrary slices. Each slice is
    // checked against what we sent as it arrives, so no per-connection
    // receive buffer is needed - one scratch buffer serves them all.
    void receive(Conn& c) {
        for (;;) {
            const size_t want = std::min(scratch_.size(), size_ - c.got);
            const ssize_t n = ::recv(c.fd.get(), scratch_.data(), want, 0);
            if (n > 0) {
                const auto len = static_cast<size_t>(n);
                if (std::memcmp(scratch_.data(), message(c) + c.got, len) != 0) {
                    return drop(c, errors_.mismatch);
                }
                c.got += len;
                if (c.got == size_) return complete(c);
                if (len < want) return;  // drained; level triggering wakes us again
            } else if (n == 0) {
                return drop(c, errors_.eof);
            } else if (errno == EAGAIN || errno == EWOULDBLOCK) {
                return;
            } else if (errno != EINTR) {
                return drop(c, errors_.reset);
            }
        }
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

    // Closing also removes the socket from the epoll set.
    void drop(Conn& c, uint64_t& counter) {
        ++counter;
        --live_;
        c.fd.reset();
    }

    void expire_stalled(Clock::time_point now) {
        for (Conn& c : conns_) {
            if (c.fd.get() >= 0 && now - c.started > timeout_) drop(c, errors_.timeout);
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
    std::exception_ptr error_;
};

// Deal the sockets out round-robin, one share per thread.
std::vector<std::unique_ptr<LoadWorker>> make_workers(std::vector<Fd> sockets, unsigned threads,
                                                      const std::vector<char>& pool,
                                                      const Options& o) {
    const size_t n = std::min<size_t>(threads, sockets.size());
    std::vector<std::vector<Fd>> shares(n);
    for (size_t i = 0; i < sockets.size(); ++i) shares[i % n].push_back(std::move(sockets[i]));
    std::vector<std::unique_ptr<LoadWorker>> workers;
    workers.reserve(shares.size());
    for (auto& share : shares) {
        workers.push_back(
            std::make_unique<LoadWorker>(std::move(share), pool, o.size, timeout_ms(o)));
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

int run_load(const Options& o) {
    raise_fd_limit();
    const Endpoint ep = resolve(o.host, o.port).front();
    ErrorCounts errors;
    std::vector<Fd> sockets = connect_all(ep, o.connections, timeout_ms(o), errors);
    const std::vector<char> pool = make_pool(o.size);
    auto workers = make_workers(std::move(sockets), o.threads, pool, o);

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
    uint64_t round_trips = 0;
    for (const auto& w : workers) {
        if (w->error()) std::rethrow_exception(w->error());
        latency.merge(w->latency());
        round_trips += w->round_trips();
        errors.add(w->errors());
    }
    std::printf("{\"connections\":%zu,\"size\":%zu,\"duration_s\":%.3f,\"round_trips\":%llu,"
                "\"rate_per_s\":%.1f,\"latency_ms\":{\"p50\":%.3f,\"p90\":%.3f,\"p99\":%.3f,"
                "\"max\":%.3f},\"errors\":{\"connect\":%llu,\"reset\":%llu,\"mismatch\":%llu,"
                "\"eof\":%llu,\"timeout\":%llu}}\n",
                o.connections, o.size, o.duration_s, static_cast<unsigned long long>(round_trips),
                static_cast<double>(round_trips) / o.duration_s, ms(latency.percentile(50)),
                ms(latency.percentile(90)), ms(latency.percentile(99)), ms(latency.max()),
                static_cast<unsigned long long>(errors.connect),
                static_cast<unsigned long long>(errors.reset),
                static_cast<unsigned long long>(errors.mismatch),
                static_cast<unsigned long long>(errors.eof),
                static_cast<unsigned long long>(errors.timeout));
    return errors.mismatch > 0 ? 1 : 0;
}

int run_client(int argc, char** argv) {
    const Options o = parse_args(argc, argv);
    if (o.help) {
        std::fputs(kUsage, stdout);
        return 0;
    }
    // MSG_NOSIGNAL covers our sends; ignoring SIGPIPE covers everything else.
    ::signal(SIGPIPE, SIG_IGN);
    if (o.load) return run_load(o);
    if (o.stream > 0) return run_stream(o);
    if (o.count == 1 && o.size == 0 && !o.json) return run_single(o);
    return run_count(o);
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
