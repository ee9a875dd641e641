// What every CLI main shares: logging to stderr (stdout is JSON Lines only), process-wide signal
// set-up, and the one place where exceptions become exit codes and a final record.
#pragma once
#include <functional>
#include <string>

#include <CLI/CLI.hpp>

#include "train/report.hpp"

namespace vit::cli {

// stderr logger (spdlog's default would write to stdout); quiet: warnings and errors only.
void setup_logging(bool quiet);

// Runs body() and turns whatever escapes it into a final record on stdout (CLI11 parse errors
// -> 64, vit::Error -> its kind, bad_alloc -> 71, anything else -> 70); prints the error as one
// line on stderr. Returns the exit code. body() returns the final record of a normal end and
// sets `signal` when the process must die by a signal after printing it.
int run_main(CLI::App& app, int argc, char** argv, const std::function<FinalRecord(int& signal)>& body);

// Flag value checks with plain messages ("must be an integer >= 1, got 0"): CLI11's own
// PositiveNumber / Range print the type's whole range.
CLI::Validator at_least_one();
CLI::Validator unit_interval();  // 0 <= x <= 1

}  // namespace vit::cli
