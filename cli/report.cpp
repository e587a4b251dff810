/*
 * report.cpp — printing a Report (report.hpp).
 *
 * The HTML page puts the verdict first, then per chain what was checked and
 * which checkpoint covers how much of it, then per audited table a stacked
 * bar chart of its entries per operation over time.  Everything is inline;
 * every text from the log is escaped, since a log holds whatever its users
 * wrote.
 */
#include "core/cpp_only.hpp"

#include "report.hpp"

#include <algorithm>
#include <cinttypes>
#include <cstdio>
#include <ctime>
#include <map>
#include <set>

#include <nlohmann/json.hpp>

namespace sa_cli
{

using json = nlohmann::json;

std::string
iso_time(int64_t us)
{
	int64_t		s = us / 1000000;

	if (us % 1000000 < 0)
		s--;
	time_t		t = static_cast<time_t>(s);
	struct tm	tm;
	char		buf[64];

	if (gmtime_r(&t, &tm) == nullptr)
		return "?";
	std::strftime(buf, sizeof(buf), "%Y-%m-%dT%H:%M:%SZ", &tm);
	return buf;
}

namespace
{

std::string
coverage_text(const Report &r, const ChainOutcome &c)
{
	uint64_t	size = 0;
	const CheckpointCheck *cp = covering_checkpoint(r, c.chain, &size);

	if (cp == nullptr)
		return "not covered by any checkpoint";
	return "entries 1.." + std::to_string(size) + " covered by " + cp->label;
}

std::string
esc(const std::string &s)
{
	std::string o;

	for (unsigned char ch : s)
	{
		switch (ch)
		{
			case '&': o += "&amp;"; break;
			case '<': o += "&lt;"; break;
			case '>': o += "&gt;"; break;
			case '"': o += "&quot;"; break;
			case '\'': o += "&#39;"; break;
			default:
				if (ch < 0x20 && ch != '\n' && ch != '\t')
					o += "?";
				else
					o += static_cast<char>(ch);
		}
	}
	return o;
}

}								/* namespace */

std::string
report_text(const Report &r)
{
	std::string o = r.verdict + "\n";

	if (!r.log_id.empty())
		o += "log " + r.log_id + "\n";
	for (const auto &c : r.chains)
	{
		char		line[512];

		if (c.ok)
			std::snprintf(line, sizeof(line), "chain %" PRIu32 ": %" PRIu64 " entries, ok; %s\n", c.chain,
						  c.entries, coverage_text(r, c).c_str());
		else
			std::snprintf(line, sizeof(line),
						  "chain %" PRIu32 ": %" PRIu64 " entries, FAILED at seq %" PRIu64 ": %s\n",
						  c.chain, c.entries, c.first_bad_seq, c.problem.c_str());
		o += line;
	}
	for (const auto &c : r.checkpoints)
		o += c.label + (c.ok ? ": ok\n" : ": FAILED\n");
	for (const auto &p : r.problems)
		o += "problem: " + p + "\n";
	return o;
}

std::string
report_json(const Report &r)
{
	json		j;

	j["verdict"] = r.status == kExitOk ? "verified" : r.status == kExitTampered ? "failed" : "not verified";
	j["status"] = r.status;
	j["summary"] = r.verdict;
	j["source"] = r.source;
	j["log_id"] = r.log_id;
	j["entries_read"] = r.entries_read;
	j["entries_verified"] = r.entries_verified;
	j["chains"] = json::array();
	for (const auto &c : r.chains)
	{
		json		o;
		uint64_t	size = 0;
		const CheckpointCheck *cp = covering_checkpoint(r, c.chain, &size);

		o["chain"] = c.chain;
		o["entries"] = c.entries;
		o["ok"] = c.ok;
		o["first_bad_seq"] = c.ok ? json(nullptr) : json(c.first_bad_seq);
		o["problem"] = c.ok ? json(nullptr) : json(c.problem);
		o["covered_by"] = cp ? json(cp->label) : json(nullptr);
		o["covered_size"] = cp ? json(size) : json(nullptr);
		j["chains"].push_back(o);
	}
	j["checkpoints"] = json::array();
	for (const auto &c : r.checkpoints)
		j["checkpoints"].push_back({{"checkpoint", c.label}, {"ok", c.ok}, {"problems", c.problems}});
	j["problems"] = r.problems;
	return j.dump(1, ' ', false, json::error_handler_t::replace) + "\n";
}

std::string
report_html(const Report &r, const std::vector<const LogScanner *> &scanners)
{
	const bool	ok = r.status == kExitOk;
	std::string o;

	o += "<!DOCTYPE html>\n<html lang=\"en\"><head><meta charset=\"utf-8\">"
		"<title>sensitive_audit verification report</title>\n<style>\n"
		"body{font-family:sans-serif;margin:2em;color:#222;background:#fff}"
		".verdict{font-size:1.6em;font-weight:bold;padding:.6em 1em;border-radius:6px;margin-bottom:1em}"
		".ok{background:#d9f2dc;color:#11521b;border:2px solid #2c8a3a}"
		".bad{background:#fbdada;color:#7a1010;border:2px solid #c02020}"
		"table{border-collapse:collapse;margin:1em 0}td,th{border:1px solid #bbb;padding:.3em .6em;text-align:left}"
		"th{background:#eee}td.num{text-align:right}.fail{color:#a00;font-weight:bold}"
		"h2{margin-top:1.5em}.legend span{display:inline-block;width:1em;height:1em;margin:0 .3em 0 1em;vertical-align:middle}"
		"</style></head><body>\n";
	o += std::string("<div class=\"verdict ") + (ok ? "ok" : "bad") + "\" id=\"verdict\">" + esc(r.verdict) +
		"</div>\n";
	o += "<p>Log <code>" + esc(r.log_id.empty() ? "(no id)" : r.log_id) + "</code>, read from " +
		esc(r.source) + ".</p>\n";
	if (!r.problems.empty())
	{
		o += "<h2>Problems</h2><ul>\n";
		for (const auto &p : r.problems)
			o += "<li class=\"fail\">" + esc(p) + "</li>\n";
		o += "</ul>\n";
	}

	o += "<h2>Chains</h2>\n<table><tr><th>chain</th><th>entries</th><th>status</th>"
		"<th>first bad seq</th><th>problem</th><th>covered by checkpoint</th></tr>\n";
	for (const auto &c : r.chains)
	{
		o += "<tr><td class=\"num\">" + std::to_string(c.chain) + "</td><td class=\"num\">" +
			std::to_string(c.entries) + "</td>";
		o += c.ok ? "<td>ok</td><td></td><td></td>"
			: "<td class=\"fail\">FAILED</td><td class=\"num\">" + std::to_string(c.first_bad_seq) +
			"</td><td>" + esc(c.problem) + "</td>";
		o += "<td>" + esc(coverage_text(r, c)) + "</td></tr>\n";
	}
	o += "</table>\n";

	o += "<h2>Checkpoints</h2>\n<table><tr><th>checkpoint</th><th>entries</th><th>chains</th><th>status</th></tr>\n";
	for (const auto &c : r.checkpoints)
	{
		o += "<tr><td>" + esc(c.label) + "</td><td class=\"num\">" +
			(c.parsed ? std::to_string(c.body.total) : std::string("?")) + "</td><td>";
		if (c.parsed)
			for (const auto &h : c.body.chains)
				o += std::to_string(h.chain) + ":&nbsp;" + std::to_string(h.size) + " ";
		o += std::string("</td><td") + (c.ok ? ">ok" : " class=\"fail\">FAILED") + "</td></tr>\n";
	}
	if (r.checkpoints.empty())
		o += "<tr><td colspan=\"4\">none</td></tr>\n";
	o += "</table>\n";

	/* Changes over time per audited table, by operation. */
	struct TableSeries
	{
		std::map<std::string, std::vector<uint64_t>> by_op;
	};
	constexpr int kBuckets = 24;
	int64_t		tmin = INT64_MAX, tmax = INT64_MIN;

	for (const LogScanner *sc : scanners)
		for (const auto &kv : sc->times())
			for (int64_t t : kv.second)
			{
				tmin = std::min(tmin, t);
				tmax = std::max(tmax, t);
			}
	std::map<std::string, TableSeries> tables;
	std::set<std::string> ops;

	if (tmin <= tmax)
	{
		const double span = static_cast<double>(tmax - tmin) + 1.0;

		for (const LogScanner *sc : scanners)
			for (const auto &kv : sc->times())
			{
				auto		it = sc->contexts().find(kv.first);
				std::string table = "(unknown context)", op = "?";

				if (it != sc->contexts().end())
				{
					const ContextInfo &ci = it->second;

					op = ci.null[SA_CTX_OPERATION] ? "?" : ci.value[SA_CTX_OPERATION];
					if (!ci.null[SA_CTX_TABLE_NAME])
						table = (ci.null[SA_CTX_TABLE_SCHEMA] ? "" : ci.value[SA_CTX_TABLE_SCHEMA] + ".") +
							ci.value[SA_CTX_TABLE_NAME];
					else
						table = "(audit setup)";
				}
				auto	   &v = tables[table].by_op[op];

				if (v.empty())
					v.assign(kBuckets, 0);
				ops.insert(op);
				for (int64_t t : kv.second)
				{
					int			b = static_cast<int>(static_cast<double>(t - tmin) / span * kBuckets);

					v[std::min(std::max(b, 0), kBuckets - 1)]++;
				}
			}
	}
	static const char *const palette[] = {"#2c7fb8", "#31a354", "#de2d26", "#756bb1", "#fd8d3c",
		"#636363", "#e7ba52", "#17becf", "#bcbd22", "#8c564b"};
	std::map<std::string, std::string> color;
	size_t		ci = 0;

	for (const auto &op : {"UPDATE", "INSERT", "DELETE"})
		if (ops.count(op))
			color[op] = palette[ci++];
	for (const auto &op : ops)
		if (!color.count(op))
			color[op] = palette[ci++ % 10];

	o += "<h2>Changes over time, per audited table</h2>\n";
	if (tables.empty())
		o += "<p>No entries.</p>\n";
	else
	{
		o += "<p>From " + esc(iso_time(tmin)) + " to " + esc(iso_time(tmax)) + ", in " +
			std::to_string(kBuckets) + " equal intervals; each bar stacks the entries per operation.</p>\n"
			"<p class=\"legend\">";
		for (const auto &kv : color)
			o += "<span style=\"background:" + kv.second + "\"></span>" + esc(kv.first);
		o += "</p>\n";
	}
	for (const auto &t : tables)
	{
		const int	W = 720, H = 180, pad = 40;
		uint64_t	peak = 1;

		for (int b = 0; b < kBuckets; b++)
		{
			uint64_t	sum = 0;

			for (const auto &kv : t.second.by_op)
				sum += kv.second[b];
			peak = std::max(peak, sum);
		}
		o += "<h3>" + esc(t.first) + "</h3>\n<svg xmlns=\"http://www.w3.org/2000/svg\" width=\"" +
			std::to_string(W + pad) + "\" height=\"" + std::to_string(H + 30) +
			"\" role=\"img\"><rect x=\"0\" y=\"0\" width=\"100%\" height=\"100%\" fill=\"#fafafa\"/>";
		const double bw = static_cast<double>(W) / kBuckets;

		for (int b = 0; b < kBuckets; b++)
		{
			double		y = H;

			for (const auto &kv : t.second.by_op)
			{
				uint64_t	n = kv.second[b];

				if (n == 0)
					continue;
				double		h = static_cast<double>(n) / static_cast<double>(peak) * (H - 10);
				char		rect[256];

				y -= h;
				std::snprintf(rect, sizeof(rect),
							  "<rect x=\"%.1f\" y=\"%.1f\" width=\"%.1f\" height=\"%.1f\" fill=\"%s\">"
							  "<title>%" PRIu64 " %s</title></rect>",
							  pad + b * bw + 1, y, bw - 2, h, color[kv.first].c_str(), n,
							  esc(kv.first).c_str());
				o += rect;
			}
		}
		o += "<line x1=\"" + std::to_string(pad) + "\" y1=\"" + std::to_string(H) + "\" x2=\"" +
			std::to_string(W + pad) + "\" y2=\"" + std::to_string(H) + "\" stroke=\"#444\"/>";
		o += "<text x=\"2\" y=\"14\" font-size=\"11\">" + std::to_string(peak) + "</text>";
		o += "<text x=\"" + std::to_string(pad) + "\" y=\"" + std::to_string(H + 16) +
			"\" font-size=\"11\">" + esc(iso_time(tmin)) + "</text>";
		o += "<text x=\"" + std::to_string(W + pad) + "\" y=\"" + std::to_string(H + 16) +
			"\" font-size=\"11\" text-anchor=\"end\">" + esc(iso_time(tmax)) + "</text></svg>\n";
	}
	o += "</body></html>\n";
	return o;
}

}								/* namespace sa_cli */
