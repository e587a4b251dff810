/*
 * report.hpp — a verification Report as text (for people and cron mail),
 * JSON (for monitoring) and one self-contained HTML page (for an auditor:
 * inline CSS and SVG, no script, nothing fetched from anywhere).
 */
#pragma once

#include "core/cpp_only.hpp"

#include <string>
#include <vector>

#include "scan.hpp"
#include "verify.hpp"

namespace sa_cli
{

std::string report_text(const Report &r);
std::string report_json(const Report &r);
/* scanners: for the pictures of changes over time (kept with keep_times). */
std::string report_html(const Report &r, const std::vector<const LogScanner *> &scanners);

/* ISO 8601 UTC of microseconds since the epoch. */
std::string iso_time(int64_t us);

}								/* namespace sa_cli */
