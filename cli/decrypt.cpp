/*
 * decrypt.cpp — `sensitive-audit decrypt` (decrypt.hpp; output format:
 * docs/FORMAT.md §10.6).
 */
#include "core/cpp_only.hpp"

#include "decrypt.hpp"

#include <openssl/crypto.h>

#include "core/sa_core.h"
#include "report.hpp"

namespace sa_cli
{

using namespace sensitive_audit;

void
load_x25519_private_key(const std::string &path, X25519Opener &o)
{
	std::string pem = read_file(path, "key file");
	int			rc = o.load_private_pem(pem);

	OPENSSL_cleanse(pem.data(), pem.size());
	if (rc == SA_ERR_KEY)
		throw Failure(kExitCannotVerify, path + ": not an unencrypted X25519 private key in PKCS#8 PEM"
					  " (what `openssl genpkey -algorithm X25519` writes)");
	if (rc != SA_OK)
		throw Failure(kExitCannotVerify, path + ": cannot load the key: " + sa_strerror(rc));
}

Decryption::Decryption(X25519Opener &key, bool as_json, std::function<void(const std::string &)> out)
	: key_(key), as_json_(as_json), out_(std::move(out))
{
}

void
Decryption::add_context(int64_t id, const Field (&fields)[kContextFields])
{
	scan_.add_context(id, fields);
}

void
Decryption::value(const EntryRow &row, const Field &f, bool verified, const char *which,
				  std::string &shown, std::optional<std::string> &clear)
{
	clear.reset();
	if (f.null)
	{
		shown = "NULL";
		return;
	}
	const std::string_view stored(f.data, f.len);

	/* Only a format 2 entry holds protected forms; format 1 values are clear text. */
	if (!verified || row.format != SA_FORMAT_PROTECTED ||
		protected_form(stored) != ProtectedForm::kSealed)
	{
		shown = json_text(std::string(stored));
		return;
	}
	sealed_++;

	std::string text;
	KeyId		other{};

	switch (key_.open(stored, text, &other))
	{
		case OpenResult::kOpened:
			opened_++;
			shown = json_text(text);
			clear = std::move(text);
			return;
		case OpenResult::kOtherKey:
			other_key_++;
			other_ids_[key_id_hex(other)]++;
			shown = "[sealed to key " + key_id_hex(other) + "]";
			return;
		case OpenResult::kNotAuthentic:
		case OpenResult::kMalformed:
			if (not_authentic_++ == 0)
				first_not_authentic_ = "chain " + std::to_string(row.chain) + " seq " +
					std::to_string(row.seq) + " " + which;
			shown = "[NOT AUTHENTIC: sealed to this key but does not decrypt]";
			return;
		case OpenResult::kError:
			break;
	}
	throw Failure(kExitCannotVerify, "OpenSSL failed while decrypting a value");
}

void
Decryption::feed(const EntryRow &row)
{
	const uint64_t before = scan_.entries_verified();

	scan_.feed(row);
	const bool	verified = scan_.entries_verified() > before;

	entries_++;
	if (!verified)
		unverified_++;

	std::string old_shown, new_shown;
	std::optional<std::string> old_clear, new_clear;

	value(row, row.old_value, verified, "old_value", old_shown, old_clear);
	value(row, row.new_value, verified, "new_value", new_shown, new_clear);

	auto		it = scan_.contexts().find(row.context);
	const ContextInfo *ctx = it == scan_.contexts().end() ? nullptr : &it->second;
	auto		cf = [&](int i) -> std::optional<std::string> {
		if (ctx == nullptr || ctx->null[i])
			return std::nullopt;
		return ctx->value[i];
	};

	if (as_json_)
	{
		std::vector<std::pair<std::string, std::optional<std::string>>> extra;

		for (int i = 0; i < kContextFields; i++)
			extra.emplace_back(kContextFieldNames[i], cf(i));
		extra.emplace_back("verified", verified ? "true" : "false");
		extra.emplace_back("old_clear", old_clear);
		extra.emplace_back("new_clear", new_clear);
		std::string line = entry_line(row, extra);

		line.push_back('\n');
		out_(line);
		OPENSSL_cleanse(line.data(), line.size());
	}
	else
	{
		auto		name = [&](int i) { return cf(i) ? *cf(i) : std::string("?"); };
		std::string line = std::string(verified ? "" : "UNVERIFIED ") + "chain " +
			std::to_string(row.chain) + " seq " + std::to_string(row.seq) + "  " +
			iso_time(row.event_time) + "  " + name(SA_CTX_OPERATION) + " " +
			name(SA_CTX_TABLE_SCHEMA) + "." + name(SA_CTX_TABLE_NAME) + "." +
			name(SA_CTX_COLUMN_NAME) + "  row " +
			(row.row_key.null ? std::string("NULL") : std::string(row.row_key.data, row.row_key.len)) +
			"  old: " + old_shown + "  new: " + new_shown + "\n";

		out_(line);
		OPENSSL_cleanse(line.data(), line.size());
	}
	if (old_clear)
		OPENSSL_cleanse(old_clear->data(), old_clear->size());
	if (new_clear)
		OPENSSL_cleanse(new_clear->data(), new_clear->size());
	OPENSSL_cleanse(old_shown.data(), old_shown.size());
	OPENSSL_cleanse(new_shown.data(), new_shown.size());
}

int
Decryption::finish(std::string &summary)
{
	scan_.finish();

	const std::string me = key_id_hex(key_.key_id());
	std::vector<std::string> lines;
	bool		chain_failed = false;

	for (const auto &c : scan_.chains())
		if (!c.ok)
		{
			chain_failed = true;
			lines.push_back("FAILED: chain " + std::to_string(c.chain) + ": first bad entry seq " +
							std::to_string(c.first_bad_seq) + ": " + c.problem);
		}
	if (chain_failed)
		lines.push_back("FAILED: " + std::to_string(unverified_) + " of " + std::to_string(entries_) +
						" entries could not be verified; they are shown as stored, marked UNVERIFIED,"
						" and none of their values was decrypted");
	if (not_authentic_ > 0)
		lines.push_back("FAILED: " + std::to_string(not_authentic_) + " values sealed to key " + me +
						" do not authenticate (altered), the first at " + first_not_authentic_);

	std::string others;

	for (const auto &kv : other_ids_)
		others += (others.empty() ? "" : ", ") + kv.first + " (" + std::to_string(kv.second) + ")";

	int			status;

	if (chain_failed || not_authentic_ > 0)
		status = kExitTampered;
	else if (entries_ == 0)
	{
		status = kExitCannotVerify;
		lines.push_back("could not decrypt: the log holds no entry");
	}
	else if (sealed_ > 0 && opened_ == 0)
	{
		status = kExitCannotVerify;
		lines.push_back("could not decrypt: no value is sealed to the key given (key id " + me +
						"); the log's " + std::to_string(sealed_) + " sealed values are sealed to key id " +
						others);
	}
	else
		status = kExitOk;

	std::string head = "read " + std::to_string(entries_) + " entries in " +
		std::to_string(scan_.chains().size()) + " chains, " +
		(chain_failed ? std::to_string(entries_ - unverified_) + " verified"
		 : std::string("every hash and link verified")) +
		"; decrypted " + std::to_string(opened_) + " values sealed to key " + me;

	if (other_key_ > 0)
		head += "; " + std::to_string(other_key_) + " values sealed to other keys are shown as stored: " + others;
	summary = head + "\n";
	for (const auto &l : lines)
		summary += l + "\n";
	return status;
}

}								/* namespace sa_cli */
