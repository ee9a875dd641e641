#include "cli/cli_common.hpp"

#include <csignal>
#include <cstdio>
#include <new>

#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include "train/signals.hpp"

namespace vit::cli {

void setup_logging(bool quiet) {
  auto logger = spdlog::stderr_color_mt("vit");
  logger->set_pattern("%^[%H:%M:%S %L]%$ %v");
  spdlog::set_default_logger(logger);
  spdlog::set_level(quiet ? spdlog::level::warn : spdlog::level::info);
}

int run_main(CLI::App& app, int argc, char** argv, const std::function<FinalRecord(int& signal)>& body) {
  std::signal(SIGXFSZ, SIG_IGN);  // a file-size limit becomes EFBIG (exit 74), not a crash
  install_stop_handlers();
  JsonLines out(stdout);
  FinalRecord fin;
  int signal = 0;
  try {
    try {
      app.parse(argc, argv);
    } catch (const CLI::Success& e) {
      return app.exit(e);  // --help / --version (CallForHelp/CallForVersion) print to stdout, exit 0
    } catch (const CLI::ParseError& e) {
      fail(ErrorKind::Usage, e.what(), " (see --help)");
    }
    fin = body(signal);
  } catch (const Interrupted&) {  // stopped by SIGINT/SIGTERM before there was anything to save
    signal = stop_signal();
    fin.status = "interrupted";
    fin.exit_code = 128 + signal;
  } catch (const Error& e) {
    fin.status = e.kind() == ErrorKind::Diverged ? "diverged" : "error";
    fin.exit_code = e.exit_code();
    fin.error = e;
  } catch (const std::bad_alloc&) {
    fin.status = "error";
    fin.exit_code = static_cast<int>(ErrorKind::OsError);
    fin.error = Error(ErrorKind::OsError, "out of memory");
  } catch (const std::exception& e) {
    fin.status = "error";
    fin.exit_code = static_cast<int>(ErrorKind::Internal);
    fin.error = Error(ErrorKind::Internal, std::string("internal error: ") + e.what());
  }
  if (fin.error) std::fprintf(stderr, "error: %s\n", fin.error->what());
  try {
    out.emit("final", final_record_json(fin));
  } catch (const Error&) {
    if (fin.exit_code == 0) fin.exit_code = static_cast<int>(ErrorKind::Io);
  }
  spdlog::shutdown();
  if (signal) die_by_signal(signal);
  return fin.exit_code;
}

CLI::Validator at_least_one() {
  return CLI::Validator(
      [](std::string& v) -> std::string {
        try {
          size_t used = 0;
          const long long x = std::stoll(v, &used);
          if (used == v.size() && x >= 1) return "";
        } catch (const std::exception&) {
        }
        return "must be an integer >= 1, got " + v;
      },
      "INT>=1");
}

CLI::Validator unit_interval() {
  return CLI::Validator(
      [](std::string& v) -> std::string {
        try {
          size_t used = 0;
          const double x = std::stod(v, &used);
          if (used == v.size() && x >= 0.0 && x <= 1.0) return "";
        } catch (const std::exception&) {
        }
        return "must be a number in [0, 1], got " + v;
      },
      "0..1");
}

}  // namespace vit::cli
