// qnnflow rtlsim harness: drives the stitched accelerator (module qnnflow_top,
// written by hw/stitch.py) cycle by cycle through Verilator.
//
// It streams packed input words (little-endian, FINN's packing: element 0 in the
// least significant bits) into s_axis, collects m_axis words, optionally stalls
// both ends at random (input TVALID withheld / output TREADY dropped with
// probability p, seeded), and stops with a deadlock status when nothing moves for
// too long or the cycle limit is reached.
//
// Usage: Vqnnflow_top in=FILE out=FILE stats=FILE n_in=WORDS n_out=WORDS
//          in_bytes=B out_bytes=B out_per_image=WORDS [stall_in=P] [stall_out=P]
//          [seed=S] [max_cycles=C] [idle_limit=C] [reset_cycles=C]
//          [trace=FILE.fst|FILE.vcd, as compiled] [half_period_ps=T]
// Exit status: 0 all outputs received, 3 deadlock / cycle limit, 2 usage or I/O error.
// The stats file (JSON) is written in every case where the simulation started.

#include <algorithm>
#include <chrono>
#include <cinttypes>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <map>
#include <memory>
#include <random>
#include <string>
#include <vector>

#include "Vqnnflow_top.h"
#include "Vqnnflow_top___024root.h"
#include "verilated.h"

// The model's own evaluation (Verilator 5 names it <model>___024root___eval). Its public
// eval() wraps this with work this design never needs: a try-lock and unlock of the
// deferred-delete list (objects freed during an eval: classes, DPI) and the end-of-eval
// message queue (multi-threaded models): ~200 of ~3600 instructions per cycle. The first
// eval goes through eval() (initial blocks, settle); the loop calls the model directly.
void Vqnnflow_top___024root___eval(Vqnnflow_top___024root* vlSelf);
#if VM_TRACE_FST
#include "verilated_fst_c.h"
using TraceFile = VerilatedFstC;
#elif VM_TRACE_VCD
#include "verilated_vcd_c.h"
using TraceFile = VerilatedVcdC;
#endif

// ---- width-generic port access (Verilator maps ports to C/S/I/QData or VlWide) ----
template <typename T>
static void put_word(T& sig, const uint8_t* p, size_t n) {
    uint64_t v = 0;
    std::memcpy(&v, p, std::min(n, sizeof(v)));  // little-endian host (x86, arm64)
    sig = static_cast<T>(v);
}
template <std::size_t W>
static void put_word(VlWide<W>& sig, const uint8_t* p, size_t n) {
    for (std::size_t i = 0; i < W; ++i) {
        uint32_t w = 0;
        const size_t off = i * 4;
        if (off < n) std::memcpy(&w, p + off, std::min<size_t>(4, n - off));
        sig[i] = w;
    }
}
template <typename T>
static void get_word(const T& sig, uint8_t* p, size_t n) {
    const uint64_t v = static_cast<uint64_t>(sig);
    std::memcpy(p, &v, std::min(n, sizeof(v)));
}
template <std::size_t W>
static void get_word(const VlWide<W>& sig, uint8_t* p, size_t n) {
    for (std::size_t i = 0; i < W; ++i) {
        const size_t off = i * 4;
        if (off >= n) break;
        const uint32_t w = sig[i];
        std::memcpy(p + off, &w, std::min<size_t>(4, n - off));
    }
}
template <typename T>
static uint32_t get_u32(const T& sig, size_t index) {
    return static_cast<uint32_t>(static_cast<uint64_t>(sig) >> (32 * index));
}
template <std::size_t W>
static uint32_t get_u32(const VlWide<W>& sig, size_t index) {
    return index < W ? sig[index] : 0;
}

static std::map<std::string, std::string> parse_args(int argc, char** argv) {
    std::map<std::string, std::string> a;
    for (int i = 1; i < argc; ++i) {
        const char* eq = std::strchr(argv[i], '=');
        if (!eq) continue;  // +verilator+... and other flags
        a[std::string(argv[i], eq - argv[i])] = std::string(eq + 1);
    }
    return a;
}

static uint64_t num(const std::map<std::string, std::string>& a, const char* k, uint64_t dflt) {
    auto it = a.find(k);
    return it == a.end() ? dflt : std::strtoull(it->second.c_str(), nullptr, 10);
}
static double real(const std::map<std::string, std::string>& a, const char* k, double dflt) {
    auto it = a.find(k);
    return it == a.end() ? dflt : std::strtod(it->second.c_str(), nullptr);
}

int main(int argc, char** argv) {
    auto a = parse_args(argc, argv);
    for (const char* k : {"in", "out", "stats", "n_in", "n_out", "in_bytes", "out_bytes", "out_per_image"}) {
        if (!a.count(k)) {
            std::fprintf(stderr, "harness: missing argument %s=...\n", k);
            return 2;
        }
    }
    const uint64_t n_in = num(a, "n_in", 0), n_out = num(a, "n_out", 0);
    const size_t ib = num(a, "in_bytes", 1), ob = num(a, "out_bytes", 1);
    const uint64_t out_per_image = std::max<uint64_t>(1, num(a, "out_per_image", 1));
    const double p_in = real(a, "stall_in", 0.0), p_out = real(a, "stall_out", 0.0);
    const uint64_t seed = num(a, "seed", 0);
    const uint64_t max_cycles = num(a, "max_cycles", UINT64_MAX);
    const uint64_t idle_limit = num(a, "idle_limit", 1000000);
    const uint64_t reset_cycles = num(a, "reset_cycles", 16);
    const uint64_t half_ps = num(a, "half_period_ps", 5000);

    std::vector<uint8_t> in(n_in * ib), out(n_out * ob, 0);
    {
        FILE* f = std::fopen(a["in"].c_str(), "rb");
        if (!f || std::fread(in.data(), 1, in.size(), f) != in.size()) {
            std::fprintf(stderr, "harness: cannot read %" PRIu64 " input words from %s\n", n_in, a["in"].c_str());
            return 2;
        }
        std::fclose(f);
    }

    auto ctx = std::make_unique<VerilatedContext>();
    ctx->commandArgs(argc, argv);
    const bool trace = a.count("trace") && !a["trace"].empty();
#if VM_TRACE
    ctx->traceEverOn(trace);
#else
    if (trace) {
        std::fprintf(stderr, "harness: built without tracing; rebuild with --trace-fst or --trace to write a waveform\n");
        return 2;
    }
#endif
    auto top = std::make_unique<Vqnnflow_top>(ctx.get(), "top");
#if VM_TRACE
    std::unique_ptr<TraceFile> tfp;
    if (trace) {
        tfp = std::make_unique<TraceFile>();
        top->trace(tfp.get(), 99);
        tfp->open(a["trace"].c_str());
    }
#endif
    uint64_t t_ps = 0;
    top->eval();  // initial blocks and settle
    auto half_cycle = [&](int clk) {
        top->ap_clk = clk;
        Vqnnflow_top___024root___eval(top->rootp);
#if VM_TRACE
        if (tfp) tfp->dump(t_ps);
#endif
        t_ps += half_ps;
    };

    // reset (active low), both stream ends idle
    top->ap_rst_n = 0;
    top->s_axis_tvalid = 0;
    top->m_axis_tready = 0;
    for (uint64_t i = 0; i < reset_cycles; ++i) {
        half_cycle(0);
        half_cycle(1);
    }
    top->ap_rst_n = 1;

    std::mt19937_64 rng(seed);
    // stall when a 64-bit draw falls below p * 2^64 (p >= 1: always)
    auto threshold = [](double p) {
        return p >= 1.0 ? UINT64_MAX : static_cast<uint64_t>(p * 18446744073709551616.0);
    };
    const uint64_t thr_in = threshold(p_in), thr_out = threshold(p_out);
    const bool stall_in = p_in > 0.0, stall_out = p_out > 0.0;
    const bool never_in = p_in >= 1.0, never_out = p_out >= 1.0;

    uint64_t cycle = 0, in_idx = 0, out_idx = 0, last_activity = 0;
    uint64_t first_in = UINT64_MAX, last_in = UINT64_MAX, first_out = UINT64_MAX;
    uint64_t in_stall_cycles = 0, out_stall_cycles = 0, backpressure_cycles = 0;
    std::vector<uint64_t> image_done;
    image_done.reserve(n_out / out_per_image + 1);
    bool holding = false;
    const char* status = "ok";

    const auto t0 = std::chrono::steady_clock::now();
    while (out_idx < n_out) {
        if (cycle >= max_cycles) { status = "cycle_limit"; break; }
        if (cycle - last_activity > idle_limit) { status = "deadlock"; break; }
        // input side: AXI-stream source; once TVALID is up it stays up until accepted
        if (!holding && in_idx < n_in) {
            if (never_in || (stall_in && rng() < thr_in)) {
                ++in_stall_cycles;
            } else {
                holding = true;
                put_word(top->s_axis_tdata, &in[in_idx * ib], ib);
            }
        }
        top->s_axis_tvalid = holding;
        // output side: TREADY may drop at any cycle
        const bool ready = !(never_out || (stall_out && rng() < thr_out));
        if (!ready) ++out_stall_cycles;
        top->m_axis_tready = ready;

        half_cycle(0);  // settle combinational paths with this cycle's inputs
        const bool in_fire = holding && top->s_axis_tready;
        const bool out_fire = ready && top->m_axis_tvalid;
        if (holding && !in_fire) ++backpressure_cycles;
        if (out_fire) get_word(top->m_axis_tdata, &out[out_idx * ob], ob);
        half_cycle(1);  // rising edge: transfers happen

        if (in_fire) {
            if (first_in == UINT64_MAX) first_in = cycle;
            last_in = cycle;
            holding = false;
            ++in_idx;
            last_activity = cycle;
        }
        if (out_fire) {
            if (first_out == UINT64_MAX) first_out = cycle;
            ++out_idx;
            if (out_idx % out_per_image == 0) image_done.push_back(cycle);
            last_activity = cycle;
        }
        ++cycle;
    }
    const double wall = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
    // a few idle cycles so that a waveform shows the last transfer settle
    top->s_axis_tvalid = 0;
    for (int i = 0; i < 4; ++i) { half_cycle(0); half_cycle(1); }
    top->final();
#if VM_TRACE
    if (tfp) tfp->close();
#endif

    {
        FILE* f = std::fopen(a["out"].c_str(), "wb");
        if (!f || std::fwrite(out.data(), 1, out.size(), f) != out.size()) {
            std::fprintf(stderr, "harness: cannot write %s\n", a["out"].c_str());
            return 2;
        }
        std::fclose(f);
    }
    FILE* s = std::fopen(a["stats"].c_str(), "w");
    if (!s) {
        std::fprintf(stderr, "harness: cannot write %s\n", a["stats"].c_str());
        return 2;
    }
    auto opt = [](uint64_t v) { return v == UINT64_MAX ? std::string("null") : std::to_string(v); };
    std::fprintf(s, "{\"status\": \"%s\", \"cycles\": %" PRIu64 ", \"reset_cycles\": %" PRIu64 ",\n", status, cycle,
                 reset_cycles);
    std::fprintf(s, " \"in_words\": %" PRIu64 ", \"out_words\": %" PRIu64 ", \"in_words_expected\": %" PRIu64
                    ", \"out_words_expected\": %" PRIu64 ",\n", in_idx, out_idx, n_in, n_out);
    std::fprintf(s, " \"first_in_cycle\": %s, \"last_in_cycle\": %s, \"first_out_cycle\": %s, \"last_activity_cycle\": %" PRIu64 ",\n",
                 opt(first_in).c_str(), opt(last_in).c_str(), opt(first_out).c_str(), last_activity);
    std::fprintf(s, " \"in_stall_cycles\": %" PRIu64 ", \"out_stall_cycles\": %" PRIu64
                    ", \"input_backpressure_cycles\": %" PRIu64 ",\n", in_stall_cycles, out_stall_cycles,
                 backpressure_cycles);
    std::fprintf(s, " \"sim_wall_s\": %.6f,\n \"fifo_maxcount\": [", wall);
    for (int i = 0; i < QNNFLOW_NUM_FIFOS; ++i)
        std::fprintf(s, "%s%u", i ? ", " : "", get_u32(top->fifo_maxcount, i));
    std::fprintf(s, "],\n \"image_done_cycles\": [");
    for (size_t i = 0; i < image_done.size(); ++i) std::fprintf(s, "%s%" PRIu64, i ? ", " : "", image_done[i]);
    std::fprintf(s, "]}\n");
    std::fclose(s);
    return std::strcmp(status, "ok") == 0 ? 0 : 3;
}
