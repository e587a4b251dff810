# bench/perf_summary.awk — summarizes a CPU profile of one backend for bench/run.sh.
#
# Input: `perf script -F ip,sym,dso` of a `perf record -e cpu-clock --call-graph dwarf -p PID`
# capture: one block per sample, innermost frame first.  Variables (awk -v):
#   hz       the sampling frequency given to perf record (samples per CPU-second)
#   xacts    transactions the backend ran while it was profiled (estimated by the caller)
#   focus    function names, separated by "|", to break down (inclusive share, then the
#            named functions they call)
#   top      how many leaf functions to list
#   ext      a library (e.g. sensitive_audit.so): report the share of samples under its code
# Debian's postgres binary has only its exported symbols: static functions show up as
# "[unknown]".  Breakdowns therefore name the first *named* function below a focus function,
# and kernel time (system calls, page faults) is charged to the user-space function that
# entered the kernel.
# Prints a markdown fragment.

function flush(   i, j, leaf, seen, s, callee) {
	if (n == 0)
		return
	total++
	leaf = ""
	for (i = 1; i <= n; i++)
		if (!kern[i]) {
			leaf = sym[i]
			break
		}
	if (leaf == "")
		leaf = "[kernel]"
	self[leaf]++
	if (in_ext)
		ext_total++
	in_ext = 0
	split("", seen)
	for (i = n; i >= 1; i--) {
		s = sym[i]
		if (s in seen)
			continue
		seen[s] = 1
		if (s in wanted) {
			incl[s]++
			j = i - 1
			# (a function inlined into itself shows up twice: skip that too)
			while (j >= 1 && (kern[j] || unknown[j] || sym[j] == s))
				j--
			callee = (j >= 1) ? sym[j] : "(itself, kernel and static functions included)"
			calls[s, callee]++
		}
	}
	n = 0
}

BEGIN {
	nf = split(focus, order, "|")
	for (i = 1; i <= nf; i++)
		wanted[order[i]] = 1
	if (top == "")
		top = 12
}

/^[^ \t]/ || /^[ \t]*$/ {
	flush()
	next
}

{
	line = $0
	sub(/^[ \t]+[0-9a-f]+ /, "", line)
	dso = line
	sub(/.* \(/, "", dso)
	sub(/\)$/, "", dso)
	sub(/ \([^()]*\)$/, "", line)
	sub(/ \(inlined\)$/, "", line)
	# inlined frames are named without their C++ namespace: drop it everywhere
	gsub(/\(anonymous namespace\)::/, "", line)
	n++
	unknown[n] = (line == "[unknown]")
	if (unknown[n]) {
		d = dso
		sub(/.*\//, "", d)
		line = "[static function in " d "]"
	}
	sym[n] = line
	kern[n] = (dso == "[kernel.kallsyms]")
	if (ext != "" && index(dso, ext) > 0)
		in_ext = 1
}

END {
	flush()
	if (total == 0) {
		print "(no samples)"
		exit
	}
	us = (xacts > 0) ? total / hz / xacts * 1e6 : 0
	printf "%d samples; backend CPU time per transaction about %.1f µs", total, us
	if (ext != "")
		printf "; under %s code: %.1f%% (%.1f µs per transaction)", ext, 100 * ext_total / total, us * ext_total / total
	printf "\n\n"
	printed = 0
	for (k = 1; k <= nf; k++) {
		f = order[k]
		if (!(f in incl))
			continue
		if (!printed) {
			printf "| function (and the named functions it calls) | share of the backend's CPU time | µs per transaction |\n|---|---:|---:|\n"
			printed = 1
		}
		printf "| `%s` | %.1f%% | %.1f |\n", f, 100 * incl[f] / total, us * incl[f] / total
		# callees of f, largest first
		m = 0
		for (key in calls) {
			split(key, a, SUBSEP)
			if (a[1] == f && 100 * calls[key] / total >= 0.3) {
				m++
				cn[m] = a[2]
				cc[m] = calls[key]
			}
		}
		for (x = 1; x <= m; x++)
			for (y = x + 1; y <= m; y++)
				if (cc[y] > cc[x]) {
					t = cc[x]; cc[x] = cc[y]; cc[y] = t
					t = cn[x]; cn[x] = cn[y]; cn[y] = t
				}
		for (x = 1; x <= m; x++)
			printf "| &nbsp;&nbsp;→ `%s` | %.1f%% | %.1f |\n", cn[x], 100 * cc[x] / total, us * cc[x] / total
	}
	if (printed)
		printf "\n"
	# top leaf functions
	m = 0
	for (s in self) {
		m++
		ln[m] = s
		lc[m] = self[s]
	}
	for (x = 1; x <= m; x++)
		for (y = x + 1; y <= m; y++)
			if (lc[y] > lc[x]) {
				t = lc[x]; lc[x] = lc[y]; lc[y] = t
				t = ln[x]; ln[x] = ln[y]; ln[y] = t
			}
	printf "Top functions by own time (kernel time charged to the caller):"
	for (x = 1; x <= m && x <= top; x++)
		printf "%s `%s` %.1f%%", (x > 1 ? "," : ""), ln[x], 100 * lc[x] / total
	printf ".\n"
}
