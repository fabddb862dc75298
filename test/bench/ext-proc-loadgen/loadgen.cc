// Native ext_proc load generator for test/bench/ext-proc.bench.ts (gRPC C++ callback API).
//
// One channel (one HTTP/2 connection, like one Envoy worker), N streams kept in flight (closed
// loop). Each stream is one simulated HTTP request, the way Envoy drives ext_proc with default
// processing modes:
//
//   request_headers (10 headers, raw_value, end_of_stream) → wait for answer
//   response_headers (10 headers)                           → wait for answer
//   half-close                                              → wait for status OK
//
// Latency is per message, write to matching answer. An answer of the wrong kind, or a non-OK
// status, counts as an error. After --warmup seconds the counters reset and --duration seconds are
// measured; with --server-pid the server's utime+stime over that window come from /proc, and the
// CPU everything else on the machine used meanwhile (otherCores) and hypervisor steal from /proc/stat.
//
// Usage: loadgen --target unix:///path|host:port --concurrency N [--warmup S] [--duration S]
//                [--server-pid PID]
// Prints one JSON object on stdout.

#include <grpcpp/grpcpp.h>
#include <sys/resource.h>
#include <unistd.h>

#include <algorithm>
#include <utility>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <memory>
#include <mutex>
#include <sstream>
#include <string>
#include <thread>
#include <vector>

#include "ext_proc_wire.grpc.pb.h"

namespace xp = envoy::service::ext_proc::v3;
using Clock = std::chrono::steady_clock;

namespace {

struct Stats {
  std::mutex mu;
  std::vector<uint32_t> latency_us;  // per message, measured window only
  std::atomic<bool> measuring{false};
  std::atomic<bool> stopping{false};
  std::atomic<uint64_t> requests{0};
  std::atomic<uint64_t> errors{0};
  std::atomic<int> outstanding{0};
  std::mutex done_mu;
  std::condition_variable done_cv;
  std::string first_error;
};

xp::ProcessingRequest MakeHeaders(bool request) {
  xp::ProcessingRequest req;
  xp::HttpHeaders* h = request ? req.mutable_request_headers() : req.mutable_response_headers();
  auto* map = h->mutable_headers();
  const char* names[10][2] = {
      {":method", "GET"},
      {":path", "/api/v1/items?page=2&sort=desc"},
      {":authority", "shop.example.com"},
      {":scheme", "https"},
      {"user-agent", "Mozilla/5.0 (X11; Linux x86_64) AppleWebKit/537.36 (KHTML, like Gecko) Chrome/120.0"},
      {"accept", "application/json, text/plain, */*"},
      {"accept-encoding", "gzip, deflate, br"},
      {"x-request-id", "8f14e45f-ceea-467f-a8d2-1f0e2c3b4a5d"},
      {"x-forwarded-for", "203.0.113.7, 198.51.100.23"},
      {"cookie", "session=3b9a1c7e5f2d4a6b8c0e; theme=dark; lang=en-GB"},
  };
  if (!request) {
    names[0][0] = ":status";
    names[0][1] = "200";
  }
  for (auto& kv : names) {
    auto* v = map->add_headers();
    v->set_key(kv[0]);
    v->set_raw_value(kv[1]);
  }
  h->set_end_of_stream(true);
  return req;
}

class Exchange : public grpc::ClientBidiReactor<xp::ProcessingRequest, xp::ProcessingResponse> {
 public:
  Exchange(xp::ExternalProcessor::Stub* stub, Stats* stats, const xp::ProcessingRequest* rh,
           const xp::ProcessingRequest* sh)
      : stub_(stub), stats_(stats), rh_(rh), sh_(sh) {
    stats_->outstanding.fetch_add(1);
    stub_->async()->Process(&ctx_, this);
    sent_ = Clock::now();
    StartWrite(rh_);
    StartRead(&resp_);
    StartCall();
  }

  // The answer can arrive before the write's completion is reported; the next write may start
  // only when both happened (one outstanding write per stream), so both callbacks advance.
  void OnWriteDone(bool ok) override {
    if (!ok) return;
    std::unique_lock<std::mutex> l(mu_);
    write_done_ = true;
    Advance(l);
  }

  void OnReadDone(bool ok) override {
    if (!ok) return;  // the status arrives in OnDone
    auto us = std::chrono::duration_cast<std::chrono::microseconds>(Clock::now() - sent_).count();
    if (stats_->measuring.load(std::memory_order_relaxed)) {
      std::lock_guard<std::mutex> l(stats_->mu);
      stats_->latency_us.push_back(static_cast<uint32_t>(us));
    }
    auto want = phase_ == 0 ? xp::ProcessingResponse::kRequestHeaders : xp::ProcessingResponse::kResponseHeaders;
    if (resp_.response_case() != want) bad_ = true;
    std::unique_lock<std::mutex> l(mu_);
    read_done_ = true;
    Advance(l);
  }

  void Advance(std::unique_lock<std::mutex>& l) {
    if (!read_done_ || !write_done_) return;
    read_done_ = write_done_ = false;
    int phase = phase_++;
    l.unlock();
    if (phase == 0) {
      sent_ = Clock::now();
      StartWrite(sh_);
      StartRead(&resp_);
    } else {
      StartWritesDone();
    }
  }

  void OnDone(const grpc::Status& s) override {
    bool measuring = stats_->measuring.load(std::memory_order_relaxed);
    if (!s.ok() || bad_ || phase_ != 2) {
      stats_->errors.fetch_add(1);
      std::lock_guard<std::mutex> l(stats_->mu);
      if (stats_->first_error.empty()) {
        stats_->first_error = s.ok() ? std::string("wrong answer kind") : s.error_message();
      }
    } else if (measuring) {
      stats_->requests.fetch_add(1);
    }
    bool stop = stats_->stopping.load();
    if (!stop) new Exchange(stub_, stats_, rh_, sh_);  // closed loop: one ends, the next starts
    if (stats_->outstanding.fetch_sub(1) == 1) {
      std::lock_guard<std::mutex> l(stats_->done_mu);
      stats_->done_cv.notify_all();
    }
    delete this;
  }

 private:
  xp::ExternalProcessor::Stub* stub_;
  Stats* stats_;
  const xp::ProcessingRequest* rh_;
  const xp::ProcessingRequest* sh_;
  grpc::ClientContext ctx_;
  xp::ProcessingResponse resp_;
  Clock::time_point sent_;
  std::mutex mu_;
  int phase_ = 0;  // 0: request headers sent, 1: response headers sent, 2: half-closed
  bool read_done_ = false;
  bool write_done_ = false;
  bool bad_ = false;
};

// utime+stime of a process, in clock ticks; -1 when unreadable.
long long ProcCpuTicks(long pid) {
  if (pid <= 0) return -1;
  std::ifstream f("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (!std::getline(f, line)) return -1;
  auto close = line.rfind(')');
  std::istringstream rest(line.substr(close + 2));
  std::string field;
  long long utime = 0, stime = 0;
  for (int i = 3; i <= 15 && rest >> field; i++) {
    if (i == 14) utime = std::atoll(field.c_str());
    if (i == 15) stime = std::atoll(field.c_str());
  }
  return utime + stime;
}

// Busy and steal clock ticks of the whole machine (/proc/stat "cpu" line); busy excludes idle,
// iowait and steal. {-1, -1} when unreadable.
std::pair<long long, long long> MachineTicks() {
  std::ifstream f("/proc/stat");
  std::string cpu;
  long long v[8] = {0};  // user nice system idle iowait irq softirq steal
  if (!(f >> cpu) || cpu != "cpu") return {-1, -1};
  for (auto& x : v)
    if (!(f >> x)) return {-1, -1};
  return {v[0] + v[1] + v[2] + v[5] + v[6], v[7]};
}

double SelfCpuSeconds() {
  rusage u{};
  getrusage(RUSAGE_SELF, &u);
  return u.ru_utime.tv_sec + u.ru_stime.tv_sec + (u.ru_utime.tv_usec + u.ru_stime.tv_usec) / 1e6;
}

uint32_t Percentile(const std::vector<uint32_t>& sorted, double p) {
  if (sorted.empty()) return 0;
  size_t i = static_cast<size_t>(p * (sorted.size() - 1) + 0.5);
  return sorted[std::min(i, sorted.size() - 1)];
}

}  // namespace

int main(int argc, char** argv) {
  std::string target;
  int concurrency = 1;
  double warmup = 1, duration = 3;
  long server_pid = 0;
  for (int i = 1; i + 1 < argc; i += 2) {
    std::string k = argv[i];
    const char* v = argv[i + 1];
    if (k == "--target") target = v;
    else if (k == "--concurrency") concurrency = std::atoi(v);
    else if (k == "--warmup") warmup = std::atof(v);
    else if (k == "--duration") duration = std::atof(v);
    else if (k == "--server-pid") server_pid = std::atol(v);
    else {
      std::fprintf(stderr, "loadgen: unknown flag %s\n", k.c_str());
      return 2;
    }
  }
  if (target.empty() || concurrency < 1) {
    std::fprintf(stderr, "usage: loadgen --target ADDR --concurrency N [--warmup S] [--duration S] [--server-pid PID]\n");
    return 2;
  }

  grpc::ChannelArguments args;
  args.SetInt(GRPC_ARG_USE_LOCAL_SUBCHANNEL_POOL, 1);
  auto channel = grpc::CreateCustomChannel(target, grpc::InsecureChannelCredentials(), args);
  if (!channel->WaitForConnected(std::chrono::system_clock::now() + std::chrono::seconds(10))) {
    std::fprintf(stderr, "loadgen: cannot connect to %s\n", target.c_str());
    return 1;
  }
  auto stub = xp::ExternalProcessor::NewStub(channel);
  Stats stats;
  const xp::ProcessingRequest rh = MakeHeaders(true), sh = MakeHeaders(false);
  int wire_bytes = static_cast<int>(rh.ByteSizeLong());

  for (int i = 0; i < concurrency; i++) new Exchange(stub.get(), &stats, &rh, &sh);
  std::this_thread::sleep_for(std::chrono::duration<double>(warmup));

  stats.errors = 0;
  long long cpu0 = ProcCpuTicks(server_pid);
  double self0 = SelfCpuSeconds();
  auto machine0 = MachineTicks();
  auto t0 = Clock::now();
  stats.measuring = true;
  std::this_thread::sleep_for(std::chrono::duration<double>(duration));
  stats.measuring = false;
  auto t1 = Clock::now();
  long long cpu1 = ProcCpuTicks(server_pid);
  double self1 = SelfCpuSeconds();
  auto machine1 = MachineTicks();
  uint64_t requests = stats.requests.load();

  stats.stopping = true;
  {
    std::unique_lock<std::mutex> l(stats.done_mu);
    stats.done_cv.wait_for(l, std::chrono::seconds(10), [&] { return stats.outstanding.load() == 0; });
  }

  double secs = std::chrono::duration<double>(t1 - t0).count();
  std::vector<uint32_t> lat;
  {
    std::lock_guard<std::mutex> l(stats.mu);
    lat = stats.latency_us;
  }
  std::sort(lat.begin(), lat.end());
  double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
  double server_cpu_s = (cpu0 < 0 || cpu1 < 0) ? -1 : (cpu1 - cpu0) / ticks;
  // What everything else on the machine used meanwhile (other people's work), and hypervisor steal.
  bool machine_ok = machine0.first >= 0 && machine1.first >= 0 && server_cpu_s >= 0;
  double other_cores =
      machine_ok ? std::max(0.0, ((machine1.first - machine0.first) / ticks - server_cpu_s - (self1 - self0)) / secs) : -1;
  double steal_cores = machine_ok ? (machine1.second - machine0.second) / ticks / secs : -1;
  std::printf(
      "{\"target\":\"%s\",\"concurrency\":%d,\"seconds\":%.3f,\"requests\":%llu,\"errors\":%llu,"
      "\"requestsPerSec\":%.1f,\"msgP50Us\":%u,\"msgP99Us\":%u,\"messages\":%zu,"
      "\"serverCpuUsPerRequest\":%.1f,\"serverCores\":%.3f,\"clientCpuUsPerRequest\":%.1f,"
      "\"otherCores\":%.3f,\"stealCores\":%.3f,\"requestHeadersBytes\":%d,\"firstError\":\"%s\"}\n",
      target.c_str(), concurrency, secs, static_cast<unsigned long long>(requests),
      static_cast<unsigned long long>(stats.errors.load()), requests / secs, Percentile(lat, 0.50),
      Percentile(lat, 0.99), lat.size(),
      server_cpu_s < 0 || requests == 0 ? -1.0 : server_cpu_s * 1e6 / requests,
      server_cpu_s < 0 ? -1.0 : server_cpu_s / secs, requests == 0 ? -1.0 : (self1 - self0) * 1e6 / requests,
      other_cores, steal_cores, wire_bytes, stats.first_error.c_str());
  std::fflush(stdout);
  // Skip destructors: reactors may still be unwinding on gRPC threads.
  std::_Exit(0);
}
