/*
 * decrypt.hpp — `sensitive-audit decrypt`: the log's entries with the
 * values sealed to one X25519 key shown in clear (docs/FORMAT.md §10.6,
 * §11).
 *
 * It reads the entries exactly as verify does (from the database or a
 * bundle) and re-hashes and links every one as it goes (LogScanner): a
 * value is only ever opened from an entry that passed, an entry that did
 * not is printed as stored and marked unverified, and the exit status is
 * then 1.  This file knows neither libpq nor files: main.cpp feeds it.
 */
#pragma once

#include "core/cpp_only.hpp"

#include <cstdint>
#include <functional>
#include <map>
#include <string>

#include "core/protect.hpp"
#include "files.hpp"
#include "scan.hpp"

namespace sa_cli
{

/* Loads an X25519 PKCS#8 private key file; Failure(2) when unreadable or not one. */
void		load_x25519_private_key(const std::string &path, sensitive_audit::X25519Opener &o);

class Decryption
{
public:
	/* out receives each output line (with its line feed), in entry order. */
	Decryption(sensitive_audit::X25519Opener &key, bool as_json,
			   std::function<void(const std::string &)> out);

	void		add_context(int64_t id, const Field (&fields)[kContextFields]);
	void		feed(const EntryRow &row);

	/*
	 * After the last entry: the summary lines (for stderr) and the exit
	 * status: 0 when at least one entry was read, every chain verified and
	 * every value sealed to this key opened; 1 when a chain fails or a
	 * value sealed to this key does not authenticate; 2 when no entry was
	 * read, or there are sealed values but none is sealed to this key.
	 */
	int			finish(std::string &summary);

	uint64_t	entries() const { return entries_; }
	uint64_t	opened() const { return opened_; }
	uint64_t	not_authentic() const { return not_authentic_; }
	uint64_t	other_key() const { return other_key_; }

private:
	/* The shown value and the clear text (when opened) of one stored value. */
	void		value(const EntryRow &row, const Field &f, bool verified, const char *which,
					  std::string &shown, std::optional<std::string> &clear);

	sensitive_audit::X25519Opener &key_;
	bool		as_json_;
	std::function<void(const std::string &)> out_;
	LogScanner	scan_;
	uint64_t	entries_ = 0;
	uint64_t	unverified_ = 0;
	uint64_t	sealed_ = 0;	/* sealed values in verified entries */
	uint64_t	opened_ = 0;
	uint64_t	not_authentic_ = 0;
	uint64_t	other_key_ = 0;
	std::map<std::string, uint64_t> other_ids_;	/* key id hex -> values */
	std::string first_not_authentic_;	/* "chain 3 seq 7 new_value" */
};

}								/* namespace sa_cli */
