// hdr_histogram.h - a small HdrHistogram: the client's one latency histogram.
//
// The layout is Gil Tene's HdrHistogram (buckets of sub-buckets, each power of
// two split into 2^k linear steps), so values keep a fixed number of
// significant digits from the lowest to the highest trackable value, recording
// is a few instructions, and nothing is allocated after construction.
//
// encode() writes the standard compressed histoblob (V2 encoding: ZigZag
// LEB128 counts with runs of zeros, inside a zlib stream, base64), the format
// every HdrHistogram library reads - PyPI's `hdrhistogram` among them - so
// histograms from many client runs (or machines) can be merged, never their
// percentiles averaged. Debian ships no HdrHistogram C library; this one is
// checked against the Python package by tests/test_cpp_histogram.py. The zlib
// stream uses deflate's "stored" blocks, so no zlib library is linked: the
// original one-line build keeps working.
//
// Percentiles follow HdrHistogram: the value at percentile p is the highest
// value equivalent (same bucket) to the sample of rank round(p% x count).

#ifndef ECHO_HDR_HISTOGRAM_H
#define ECHO_HDR_HISTOGRAM_H

#include <algorithm>
#include <cmath>
#include <cstdint>
#include <cstring>
#include <string>
#include <string_view>
#include <vector>

class HdrHistogram {
public:
    HdrHistogram(uint64_t lowest, uint64_t highest, int significant_digits)
        : lowest_(lowest), highest_(highest), digits_(significant_digits) {
        const auto single_unit = static_cast<uint64_t>(2 * std::pow(10.0, digits_));
        const int sub_count_magnitude = static_cast<int>(std::ceil(std::log2(static_cast<double>(single_unit))));
        sub_half_magnitude_ = std::max(sub_count_magnitude, 1) - 1;
        sub_count_ = uint64_t{1} << (sub_half_magnitude_ + 1);
        sub_half_ = sub_count_ / 2;
        unit_magnitude_ = static_cast<int>(std::floor(std::log2(static_cast<double>(lowest_))));
        sub_mask_ = (sub_count_ - 1) << unit_magnitude_;
        uint64_t smallest_untrackable = sub_count_ << unit_magnitude_;
        int buckets = 1;
        while (smallest_untrackable <= highest_) {
            if (smallest_untrackable > (UINT64_MAX >> 1)) {
                ++buckets;
                break;
            }
            smallest_untrackable <<= 1;
            ++buckets;
        }
        counts_.assign(static_cast<size_t>(buckets + 1) * sub_half_, 0);
    }

    // Values above the highest trackable one are recorded as that value.
    void record(uint64_t value) {
        value = std::min(value, highest_);
        ++counts_[index_of(value)];
        ++count_;
        sum_ += value;
        min_ = std::min(min_, value);
        max_ = std::max(max_, value);
    }

    void merge(const HdrHistogram& other) {
        for (size_t i = 0; i < counts_.size(); ++i) counts_[i] += other.counts_[i];
        count_ += other.count_;
        sum_ += other.sum_;
        min_ = std::min(min_, other.min_);
        max_ = std::max(max_, other.max_);
    }

    uint64_t count() const { return count_; }
    uint64_t min() const { return count_ ? min_ : 0; }
    uint64_t max() const { return count_ ? highest_equivalent(max_) : 0; }
    double mean() const {
        return count_ ? static_cast<double>(sum_) / static_cast<double>(count_) : 0;
    }

    uint64_t percentile(double p) const {
        if (count_ == 0) return 0;
        // Rounded half up, as every HdrHistogram library does, so that percentiles agree.
        const auto rank = std::max<uint64_t>(
            1, static_cast<uint64_t>(std::floor(std::min(p, 100.0) / 100.0 * static_cast<double>(count_) + 0.5)));
        uint64_t seen = 0;
        for (size_t i = 0; i < counts_.size(); ++i) {
            seen += counts_[i];
            if (seen >= rank) return highest_equivalent(value_of(i));
        }
        return max();
    }

    std::string encode() const {
        size_t used = counts_.size();
        while (used > 0 && counts_[used - 1] == 0) --used;
        std::string counts;
        for (size_t i = 0; i < used; ++i) {
            if (counts_[i] != 0) {
                put_zigzag(counts, static_cast<int64_t>(counts_[i]));
                continue;
            }
            int64_t zeros = 1;
            while (i + 1 < used && counts_[i + 1] == 0) {
                ++zeros;
                ++i;
            }
            put_zigzag(counts, zeros > 1 ? -zeros : 0);
        }
        std::string payload;
        put_be(payload, kEncodingCookie, 4);
        put_be(payload, counts.size(), 4);
        put_be(payload, 0, 4);  // normalizing index offset
        put_be(payload, static_cast<uint64_t>(digits_), 4);
        put_be(payload, lowest_, 8);
        put_be(payload, highest_, 8);
        uint64_t ratio_bits = 0;  // the integer-to-double conversion ratio, 1.0
        const double ratio = 1.0;
        std::memcpy(&ratio_bits, &ratio, sizeof ratio);
        put_be(payload, ratio_bits, 8);
        payload += counts;
        const std::string compressed = zlib_stored(payload);
        std::string blob;
        put_be(blob, kCompressionCookie, 4);
        put_be(blob, compressed.size(), 4);
        return base64(blob + compressed);
    }

private:
    static constexpr uint64_t kEncodingCookie = 0x1c849303 | 0x10;     // V2, 8-byte word size
    static constexpr uint64_t kCompressionCookie = 0x1c849304 | 0x10;  // V2 compressed

    size_t index_of(uint64_t value) const {
        const int pow2_ceiling = 64 - __builtin_clzll(value | sub_mask_);
        const int bucket = pow2_ceiling - unit_magnitude_ - (sub_half_magnitude_ + 1);
        const uint64_t sub = value >> (bucket + unit_magnitude_);
        return static_cast<size_t>((static_cast<uint64_t>(bucket + 1) << sub_half_magnitude_) + sub - sub_half_);
    }

    uint64_t value_of(size_t index) const {
        int bucket = static_cast<int>(index >> sub_half_magnitude_) - 1;
        uint64_t sub = (index & (sub_half_ - 1)) + sub_half_;
        if (bucket < 0) {
            sub -= sub_half_;
            bucket = 0;
        }
        return sub << (bucket + unit_magnitude_);
    }

    uint64_t highest_equivalent(uint64_t value) const {
        const int pow2_ceiling = 64 - __builtin_clzll(value | sub_mask_);
        int bucket = pow2_ceiling - unit_magnitude_ - (sub_half_magnitude_ + 1);
        const uint64_t sub = value >> (bucket + unit_magnitude_);
        const uint64_t lowest_equivalent = sub << (bucket + unit_magnitude_);
        if (sub >= sub_count_) ++bucket;
        return lowest_equivalent + (uint64_t{1} << (unit_magnitude_ + bucket)) - 1;
    }

    static void put_be(std::string& out, uint64_t value, int bytes) {
        for (int shift = (bytes - 1) * 8; shift >= 0; shift -= 8) {
            out.push_back(static_cast<char>((value >> shift) & 0xff));
        }
    }

    // LEB128 of the ZigZag value, at most 9 bytes: the ninth carries 8 bits.
    static void put_zigzag(std::string& out, int64_t signed_value) {
        auto value = (static_cast<uint64_t>(signed_value) << 1) ^ static_cast<uint64_t>(signed_value >> 63);
        for (int i = 0; i < 8 && value >= 0x80; ++i) {
            out.push_back(static_cast<char>((value & 0x7f) | 0x80));
            value >>= 7;
        }
        out.push_back(static_cast<char>(value & 0xff));
    }

    // A zlib stream of deflate "stored" blocks (RFC 1950/1951): no compression,
    // readable by any inflater.
    static std::string zlib_stored(const std::string& data) {
        std::string out("\x78\x01", 2);
        constexpr size_t kBlock = 65535;
        size_t at = 0;
        do {
            const size_t n = std::min(kBlock, data.size() - at);
            const bool last = at + n == data.size();
            out.push_back(static_cast<char>(last ? 1 : 0));
            for (const uint64_t word : {uint64_t{n}, uint64_t{~n & 0xffff}}) {
                out.push_back(static_cast<char>(word & 0xff));
                out.push_back(static_cast<char>((word >> 8) & 0xff));
            }
            out.append(data, at, n);
            at += n;
        } while (at < data.size());
        uint32_t a = 1;
        uint32_t b = 0;
        for (const char c : data) {
            a = (a + static_cast<unsigned char>(c)) % 65521;
            b = (b + a) % 65521;
        }
        put_be(out, (uint64_t{b} << 16) | a, 4);
        return out;
    }

    static std::string base64(const std::string& data) {
        constexpr std::string_view kAlphabet =
            "ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789+/";
        std::string out;
        for (size_t i = 0; i < data.size(); i += 3) {
            uint32_t group = static_cast<uint32_t>(static_cast<unsigned char>(data[i])) << 16;
            if (i + 1 < data.size()) group |= static_cast<uint32_t>(static_cast<unsigned char>(data[i + 1])) << 8;
            if (i + 2 < data.size()) group |= static_cast<unsigned char>(data[i + 2]);
            const size_t chars = std::min<size_t>(3, data.size() - i) + 1;  // the rest is padding
            for (size_t k = 0; k < 4; ++k) {
                out.push_back(k < chars ? kAlphabet[(group >> (18 - 6 * k)) & 0x3f] : '=');
            }
        }
        return out;
    }

    uint64_t lowest_;
    uint64_t highest_;
    int digits_;
    int sub_half_magnitude_ = 0;
    uint64_t sub_count_ = 0;
    uint64_t sub_half_ = 0;
    int unit_magnitude_ = 0;
    uint64_t sub_mask_ = 0;
    std::vector<uint64_t> counts_;
    uint64_t count_ = 0;
    uint64_t sum_ = 0;
    uint64_t min_ = UINT64_MAX;
    uint64_t max_ = 0;
};

#endif  // ECHO_HDR_HISTOGRAM_H
