/*
 * main.cpp — sensitive-audit, the independent verifier, signer and witness
 * of a sensitive_audit log (DESIGN.md, "The command-line program").
 *
 * It trusts nothing the database computes: it reads stored rows and
 * recomputes every hash, link, tree and signature with src/core, the same
 * code the extension hashes with.  Exit status: 0 verified (at least one
 * entry, every check passed); 1 tampering found; 2 could not verify (bad
 * usage, unreadable, empty, truncated or unknown input, or a checkpoint it
 * cannot cover).  decrypt prints the entries with the values sealed to an
 * X25519 key in clear, after the same checks of every hash and link.
 */
#include "core/cpp_only.hpp"

#include <algorithm>
#include <chrono>
#include <exception>
#include <thread>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <iostream>

#include <CLI/CLI.hpp>
#include <openssl/crypto.h>
#include <openssl/rand.h>

#include "core/checkpoint.hpp"
#include "core/merkle.hpp"
#include "db.hpp"
#include "decrypt.hpp"
#include "files.hpp"
#include "report.hpp"
#include "scan.hpp"
#include "verify.hpp"

using namespace sa_cli;
using namespace sensitive_audit;

namespace
{

void
say(const std::string &s)
{
	std::fputs(s.c_str(), stdout);
	std::fflush(stdout);
}

/* ---- keygen ------------------------------------------------------------------- */

int
cmd_keygen(const std::string &name, const std::string &priv_path, const std::string &pub_path)
{
	if (!valid_key_name(name))
		throw Failure(kExitCannotVerify, "invalid key name \"" + name +
					  "\": it must be non-empty UTF-8 without spaces or '+'");
	for (const auto &p : {priv_path, pub_path})
	{
		FILE	   *f = std::fopen(p.c_str(), "r");

		if (f != nullptr)
		{
			std::fclose(f);
			throw Failure(kExitCannotVerify, p + " exists already; refusing to overwrite it");
		}
	}
	SignerKey	sk;

	sk.name = name;
	if (RAND_priv_bytes(sk.private_key.data(), static_cast<int>(sk.private_key.size())) != 1)
		throw Failure(kExitCannotVerify, "the system's random number generator failed");
	uint8_t		pub[kEd25519KeyLen];
	VerifierKey vk;
	std::string priv_text, pub_text;

	if (ed25519_public_key(sk.private_key.data(), pub) != SA_OK ||
		make_verifier_key(name, pub, vk) != SA_OK)
		throw Failure(kExitCannotVerify, "cannot derive the Ed25519 public key");
	sk.key_id = vk.key_id;
	if (encode_signer_key(sk, priv_text) != SA_OK || encode_verifier_key(vk, pub_text) != SA_OK)
		throw Failure(kExitCannotVerify, "cannot encode the key pair");
	OPENSSL_cleanse(sk.private_key.data(), sk.private_key.size());
	priv_text += "\n";
	try
	{
		write_new_file(priv_path, priv_text, 0600);
	}
	catch (...)
	{
		OPENSSL_cleanse(priv_text.data(), priv_text.size());
		throw;
	}
	OPENSSL_cleanse(priv_text.data(), priv_text.size());
	write_new_file(pub_path, pub_text + "\n", 0644);
	say("wrote the private key to " + priv_path + " (mode 0600) and the public key to " + pub_path +
		":\n" + pub_text + "\n");
	return kExitOk;
}

/* ---- checkpoint --------------------------------------------------------------- */

int
cmd_checkpoint(const std::string &conninfo, const std::string &key_path, const std::string &dir,
			   bool full)
{
	SignerKey	sk = load_signer_key(key_path);
	uint8_t		pub[kEd25519KeyLen];
	VerifierKey vk;

	if (ed25519_public_key(sk.private_key.data(), pub) != SA_OK ||
		make_verifier_key(sk.name, pub, vk) != SA_OK || vk.key_id != sk.key_id)
		throw Failure(kExitCannotVerify, key_path + ": the key ID does not match the key");

	StateDir	state(dir, true);	/* serialises concurrent runs */
	auto		latest = state.latest(vk);
	Database	db(conninfo);

	db.begin_snapshot();
	if (db.log_id().empty())
		throw Failure(kExitCannotVerify, "extension version " + db.ext_version() +
					  " has no log id and no checkpoints (version 1.2 or later is needed)");
	if (latest && latest->body.log_id != db.log_id())
		throw Failure(kExitTampered, "refusing: the state directory's checkpoints are for log " +
					  latest->body.log_id + ", but this database holds log " + db.log_id() +
					  " (another database, or the log was dropped and rebuilt)");

	LogScanner	scan;
	std::vector<std::pair<uint32_t, uint64_t>> from;

	if (latest)
	{
		for (const auto &c : latest->chains)
		{
			if (full)
				scan.want_root(c.chain, c.size);
			else
			{
				scan.resume(c);
				from.emplace_back(c.chain, c.size);
			}
		}
	}
	db.contexts([&](int64_t id, const Field (&f)[kContextFields]) { scan.add_context(id, f); });
	db.entries([&](const EntryRow &r) { scan.feed(r); }, from);
	scan.finish();
	db.commit();

	std::vector<std::string> problems;

	for (const auto &c : scan.chains())
		if (!c.ok)
			problems.push_back("chain " + std::to_string(c.chain) + ": first bad entry seq " +
							   std::to_string(c.first_bad_seq) + ": " + c.problem);
	if (latest && full)
		for (const auto &h : latest->body.chains)
		{
			const ChainOutcome *o = scan.chain(h.chain);
			bool		extends = o != nullptr && o->good_size >= h.size &&
				o->roots.count(h.size) != 0 && o->roots.at(h.size) == h.root;

			if (!extends)
				problems.push_back("chain " + std::to_string(h.chain) + ": the log does not extend " +
								   latest->name + " (" + std::to_string(h.size) + " entries)");
		}
	if (!problems.empty())
	{
		std::string msg = "refusing to sign: the log does not extend the state directory's latest checkpoint"
			" or fails verification";

		for (const auto &p : problems)
			msg += "\n  " + p;
		throw Failure(kExitTampered, msg);
	}

	std::vector<ChainHead> heads;
	std::vector<ChainResume> trees;

	for (const auto &c : scan.chains())
	{
		if (c.good_size == 0)
			continue;
		heads.push_back(ChainHead{c.chain, c.good_size, c.root});
		trees.push_back(ChainResume{c.chain, c.good_size, c.last_hash, c.subtrees});
	}
	if (heads.empty())
		throw Failure(kExitCannotVerify, "the log holds no entry: nothing to checkpoint");

	std::string body;

	if (encode_log_checkpoint(db.log_id(), heads.data(), heads.size(), body) != SA_OK)
		throw Failure(kExitCannotVerify, "cannot encode the checkpoint body");

	uint64_t	total = 0;

	for (const auto &h : heads)
		total += h.size;

	SignedNote	latest_note;

	if (latest && parse_note(latest->note, latest_note) != SA_OK)
		throw Failure(kExitCannotVerify, "cannot parse " + latest->name);
	if (latest && latest_note.text == body)
	{
		int64_t		id = db.add_checkpoint(latest->note);

		say("log unchanged since " + latest->name + " (" + std::to_string(total) +
			" entries); it is stored in the database as checkpoint #" + std::to_string(id) + "\n");
		OPENSSL_cleanse(sk.private_key.data(), sk.private_key.size());
		return kExitOk;
	}

	std::string note;
	int			rc = sign_note(body, sk.name, sk.private_key.data(), note);

	OPENSSL_cleanse(sk.private_key.data(), sk.private_key.size());
	if (rc != SA_OK)
		throw Failure(kExitCannotVerify, "cannot sign the checkpoint");

	/*
	 * The database first: if it refuses (its trees disagree with what was
	 * verified here), the witness records nothing.  A state directory left
	 * behind the database (a crash in between) only makes the next run
	 * resume from an older checkpoint.
	 */
	int64_t		id = db.add_checkpoint(note);
	std::string name = state.append(note, db.log_id(), trees);

	say("signed " + name + ": " + std::to_string(total) + " entries in " + std::to_string(heads.size()) +
		" chains (" + std::to_string(scan.entries_verified()) + " entries verified in this run" +
		(latest && !full ? ", from " + latest->name : std::string()) +
		"); stored in the database as checkpoint #" + std::to_string(id) + "\n");
	return kExitOk;
}

/* ---- verify ------------------------------------------------------------------- */

int
finish_report(const Report &r, const std::vector<const LogScanner *> &scans, bool as_json,
			  const std::string &html)
{
	if (!html.empty())
		write_replace_file(html, report_html(r, scans), 0644);
	say(as_json ? report_json(r) : report_text(r));
	return r.status;
}

int
cmd_verify_db(const std::string &conninfo, const std::string &pub_path, const std::string &dir,
			  bool as_json, const std::string &html, int jobs)
{
	auto		t0 = std::chrono::steady_clock::now();
	VerifierKey key = load_verifier_key(pub_path);
	std::unique_ptr<StateDir> state;
	std::optional<StateCheckpoint> latest;

	if (!dir.empty())
	{
		state = std::make_unique<StateDir>(dir, false);
		latest = state->latest(key);
		if (!latest)
			throw Failure(kExitCannotVerify, "state directory " + dir + " holds no checkpoint to hold the log to");
	}
	Database	db(conninfo);

	db.begin_snapshot();

	Verification v(key, !html.empty());

	/*
	 * Chains are independent: with several jobs, each reads and checks a
	 * share of them (balanced by entry count) over its own connection, in
	 * the same snapshot.
	 */
	std::vector<std::vector<uint32_t>> parts;

	if (jobs > 1)
	{
		auto		counts = db.chain_counts();

		std::sort(counts.begin(), counts.end(),
				  [](const auto &a, const auto &b) { return a.second > b.second; });
		std::vector<uint64_t> load(static_cast<size_t>(std::min<size_t>(jobs, counts.size())), 0);

		parts.resize(load.size());
		for (const auto &c : counts)
		{
			size_t		i = static_cast<size_t>(std::min_element(load.begin(), load.end()) - load.begin());

			parts[i].push_back(c.first);
			load[i] += c.second;
		}
		for (auto &p : parts)
			std::sort(p.begin(), p.end());
		if (parts.size() > 1)
			v.partition(parts);
		else
			parts.clear();
	}

	v.set_log_id(db.log_id());
	for (const auto &cp : db.checkpoints())
		v.add_stored(cp);
	if (latest)
		v.add_state(*latest);
	db.contexts([&](int64_t id, const Field (&f)[kContextFields]) { v.add_context(id, f); });

	if (parts.empty())
		db.entries([&](const EntryRow &r) { v.scanner().feed(r); });
	else
	{
		const std::string snapshot = db.export_snapshot();
		std::vector<std::thread> threads;
		std::vector<std::exception_ptr> errors(parts.size());

		for (size_t i = 0; i < parts.size(); i++)
			threads.emplace_back([&, i]() {
				try
				{
					Database	worker(conninfo);

					worker.import_snapshot(snapshot);
					worker.entries([&](const EntryRow &r) { v.scanner(i).feed(r); }, {}, -1, 0, &parts[i]);
					worker.commit();
				}
				catch (...)
				{
					errors[i] = std::current_exception();
				}
			});
		for (auto &t : threads)
			t.join();
		for (auto &e : errors)
			if (e)
				std::rethrow_exception(e);
	}
	db.commit();

	Report		r = v.finish("the database");

	r.seconds = std::chrono::duration<double>(std::chrono::steady_clock::now() - t0).count();
	return finish_report(r, v.scanners(), as_json, html);
}

int
cmd_verify_bundle(const std::string &path, const std::string &pub_path, const std::string &dir,
				  bool as_json, const std::string &html)
{
	VerifierKey key = load_verifier_key(pub_path);
	std::unique_ptr<StateDir> state;
	std::optional<StateCheckpoint> latest;

	if (!dir.empty())
	{
		state = std::make_unique<StateDir>(dir, false);
		latest = state->latest(key);
		if (!latest)
			throw Failure(kExitCannotVerify, "state directory " + dir + " holds no checkpoint to hold the log to");
	}
	Verification v(key, !html.empty());
	BundleSink	sink;

	sink.header = [&](const std::string &log_id) { v.set_log_id(log_id); };
	sink.checkpoint = [&](const StoredCheckpoint &cp) { v.add_stored(cp); };
	sink.context = [&](int64_t id, const Field (&f)[kContextFields]) { v.add_context(id, f); };
	sink.contexts_done = [&]() {
		if (latest)
			v.add_state(*latest);
	};
	sink.entry = [&](const EntryRow &r) { v.scanner().feed(r); };
	read_bundle(path, sink);

	Report		r = v.finish("bundle " + path);

	return finish_report(r, v.scanners(), as_json, html);
}

/* ---- export ------------------------------------------------------------------- */

int
cmd_export(const std::string &conninfo, const std::string &out)
{
	Database	db(conninfo);

	db.begin_snapshot();
	BundleWriter w(out, db.log_id());
	uint64_t	n = 0;

	for (const auto &cp : db.checkpoints())
		w.checkpoint(cp);
	db.contexts([&](int64_t id, const Field (&f)[kContextFields]) { w.context(id, f); });
	db.entries([&](const EntryRow &r) {
		w.entry(r);
		n++;
	});
	db.commit();
	w.finish();
	say("exported " + std::to_string(n) + " entries of log " + db.log_id() + " to " + out + "\n");
	return kExitOk;
}

/* ---- prove and verify-proof --------------------------------------------------- */

/* Every check of a proof but the signature (which needs the key). */
int
check_proof(const Proof &p, const LogCheckpoint &cp, std::string &why)
{
	Digest		computed = proof_entry_hash(p.entry);

	if (computed != p.entry_hash)
	{
		why = "the entry's fields do not match its hash (the entry was altered)";
		return kExitTampered;
	}
	if (p.leaf_index != static_cast<uint64_t>(p.entry.seq) - 1)
	{
		why = "leaf index " + std::to_string(p.leaf_index) + " is not seq - 1";
		return kExitTampered;
	}
	if (cp.log_id != p.log_id)
	{
		why = "the checkpoint is for log " + cp.log_id + ", the proof names log " + p.log_id;
		return kExitTampered;
	}
	size_t		idx = 0;

	while (idx < cp.chains.size() && cp.chains[idx].chain != static_cast<uint32_t>(p.entry.chain))
		idx++;
	if (idx == cp.chains.size())
	{
		why = "the checkpoint has no chain " + std::to_string(p.entry.chain);
		return kExitTampered;
	}
	const ChainHead &h = cp.chains[idx];

	if (h.size != p.tree_size || p.leaf_index >= h.size)
	{
		why = "chain " + std::to_string(h.chain) + " has " + std::to_string(h.size) +
			" entries in the checkpoint; the proof is for tree size " + std::to_string(p.tree_size) +
			" and seq " + std::to_string(p.entry.seq);
		return kExitTampered;
	}
	Digest		leaf;

	if (hash_entry_leaf(p.entry_hash.data(), leaf) != SA_OK ||
		verify_inclusion(p.leaf_index, p.tree_size, leaf, p.path.data(), p.path.size(), h.root) != SA_OK)
	{
		why = "the audit path does not lead from the entry to chain " + std::to_string(h.chain) +
			"'s root in the checkpoint";
		return kExitTampered;
	}
	if (p.record_index != idx || p.record_count != cp.chains.size())
	{
		why = "the chain record's index or count does not match the checkpoint";
		return kExitTampered;
	}
	uint8_t		rec[kChainRecordLen];
	Digest		rleaf;

	encode_chain_record(h, rec);
	if (hash_leaf(rec, sizeof(rec), rleaf) != SA_OK ||
		verify_inclusion(p.record_index, p.record_count, rleaf, p.record_path.data(),
						 p.record_path.size(), cp.root) != SA_OK)
	{
		why = "the chain record's path does not lead to the checkpoint's root";
		return kExitTampered;
	}
	return kExitOk;
}

int
cmd_prove(const std::string &conninfo, int64_t chain, int64_t seq, const std::string &out)
{
	if (chain < 0 || chain > UINT32_MAX || seq < 1)
		throw Failure(kExitCannotVerify, "--chain must be 0 or more and --seq 1 or more");
	Database	db(conninfo);

	db.begin_snapshot();
	if (db.log_id().empty())
		throw Failure(kExitCannotVerify, "extension version " + db.ext_version() + " has no checkpoints");

	/* The latest stored checkpoint of this log covering chain/seq. */
	StoredCheckpoint chosen;
	LogCheckpoint body;
	bool		found = false;

	for (const auto &cp : db.checkpoints())
	{
		SignedNote	n;
		LogCheckpoint b;

		if (parse_note(cp.note, n) != SA_OK || parse_log_checkpoint(n.text, b) != SA_OK ||
			b.log_id != db.log_id())
			continue;
		for (const auto &h : b.chains)
			if (h.chain == static_cast<uint32_t>(chain) && h.size >= static_cast<uint64_t>(seq))
			{
				chosen = cp;
				body = b;
				found = true;
			}
	}
	if (!found)
		throw Failure(kExitCannotVerify, "no stored checkpoint covers chain " + std::to_string(chain) +
					  " seq " + std::to_string(seq) + "; run 'sensitive-audit checkpoint' first");
	size_t		idx = 0;

	while (body.chains[idx].chain != static_cast<uint32_t>(chain))
		idx++;
	const ChainHead head = body.chains[idx];

	/* Read and verify the chain up to the checkpoint's size, keeping its leaves. */
	LogScanner	scan;
	std::vector<Digest> leaves;
	std::optional<Proof> proof;

	scan.want_root(head.chain, head.size);
	db.contexts([&](int64_t id, const Field (&f)[kContextFields]) { scan.add_context(id, f); });
	db.entries(
		[&](const EntryRow &r) {
			scan.feed(r);
			if (r.hash.null || r.hash.len != SA_DIGEST_LEN || r.seq != leaves.size() + 1)
				return;
			Digest		lh;

			hash_entry_leaf(reinterpret_cast<const uint8_t *>(r.hash.data), lh);
			leaves.push_back(lh);
			if (r.seq == static_cast<uint64_t>(seq))
			{
				Proof		p;

				p.entry.format = r.format;
				p.entry.chain = chain;
				p.entry.seq = seq;
				p.entry.txid = r.txid;
				p.entry.event_time = r.event_time;
				p.entry.backend_pid = r.backend_pid;
				if (!r.prev_hash.null && r.prev_hash.len == SA_DIGEST_LEN)
					std::memcpy(p.entry.prev_hash.data(), r.prev_hash.data, SA_DIGEST_LEN);
				std::memcpy(p.entry_hash.data(), r.hash.data, SA_DIGEST_LEN);
				auto		it = scan.contexts().find(r.context);
				const ContextInfo *ci = it == scan.contexts().end() ? nullptr : &it->second;
				auto		ctx = [&](int i) -> std::optional<std::string> {
					if (ci == nullptr || ci->null[i])
						return std::nullopt;
					return ci->value[i];
				};
				auto		own = [](const Field &f) -> std::optional<std::string> {
					if (f.null)
						return std::nullopt;
					return std::string(f.data, f.len);
				};
#define SA_FROM_ROW_(name, ...) own(r.name),
#define SA_FROM_CONTEXT_(name, NAME, sqltype) ctx(SA_CTX_##NAME),
				p.entry.texts = {SA_ENTRY_FIELDS(SA_FIELD_NONE, SA_FROM_ROW_, SA_FROM_CONTEXT_)};
#undef SA_FROM_ROW_
#undef SA_FROM_CONTEXT_
				proof = std::move(p);
			}
		},
		{}, chain, static_cast<int64_t>(head.size));
	scan.finish();
	db.commit();

	const ChainOutcome *o = scan.chain(head.chain);

	if (o == nullptr || !o->ok || o->good_size < head.size)
		throw Failure(kExitTampered, "refusing: chain " + std::to_string(chain) + " fails verification" +
					  (o && !o->ok ? " at seq " + std::to_string(o->first_bad_seq) + ": " + o->problem
					   : std::string(" (fewer entries than the checkpoint covers)")));
	auto		rit = o->roots.find(head.size);

	if (rit == o->roots.end() || rit->second != head.root)
		throw Failure(kExitTampered, "refusing: chain " + std::to_string(chain) +
					  " no longer has the root stored checkpoint #" + std::to_string(chosen.id) + " signed");
	if (!proof)
		throw Failure(kExitCannotVerify, "entry chain " + std::to_string(chain) + " seq " +
					  std::to_string(seq) + " was not found");

	MemoryTree	tree;

	leaves.resize(head.size);
	if (tree.build(leaves.data(), leaves.size()) != SA_OK ||
		inclusion_proof(static_cast<uint64_t>(seq) - 1, head.size, tree.reader(), proof->path) != SA_OK)
		throw Failure(kExitCannotVerify, "cannot compute the audit path");

	std::vector<Digest> rleaves;

	for (const auto &h : body.chains)
	{
		uint8_t		rec[kChainRecordLen];
		Digest		d;

		encode_chain_record(h, rec);
		hash_leaf(rec, sizeof(rec), d);
		rleaves.push_back(d);
	}
	MemoryTree	rtree;

	if (rtree.build(rleaves.data(), rleaves.size()) != SA_OK ||
		inclusion_proof(idx, rleaves.size(), rtree.reader(), proof->record_path) != SA_OK)
		throw Failure(kExitCannotVerify, "cannot compute the chain record's path");

	proof->log_id = db.log_id();
	proof->leaf_index = static_cast<uint64_t>(seq) - 1;
	proof->tree_size = head.size;
	proof->checkpoint = chosen.note;
	proof->record_index = idx;
	proof->record_count = body.chains.size();

	std::string why;

	if (check_proof(*proof, body, why) != kExitOk)
		throw Failure(kExitTampered, "refusing: the proof does not check: " + why);
	write_new_file(out, encode_proof(*proof), 0644);
	say("wrote the proof of chain " + std::to_string(chain) + " seq " + std::to_string(seq) +
		" against stored checkpoint #" + std::to_string(chosen.id) + " (" + std::to_string(body.total) +
		" entries) to " + out + "\n");
	return kExitOk;
}

int
cmd_verify_proof(const std::string &path, const std::string &pub_path)
{
	VerifierKey key = load_verifier_key(pub_path);
	Proof		p = parse_proof(read_file(path, "proof file"));
	std::string text;
	int			rc = verify_note(p.checkpoint, &key, 1, &text, nullptr);
	std::string what = "proof " + path + " of chain " + std::to_string(p.entry.chain) + " seq " +
		std::to_string(p.entry.seq);

	if (rc != SA_OK)
	{
		say("FAILED: " + what + ": the checkpoint has no valid signature by the key " + key.name +
			(rc == SA_ERR_SYNTAX ? " (it is not a well-formed signed note)\n" : "\n"));
		return kExitTampered;
	}
	LogCheckpoint cp;

	if (parse_log_checkpoint(text, cp) != SA_OK)
	{
		say("FAILED: " + what + ": the signed checkpoint is not a valid sensitive_audit checkpoint\n");
		return kExitTampered;
	}
	std::string why;

	rc = check_proof(p, cp, why);
	if (rc != kExitOk)
	{
		say("FAILED: " + what + ": " + why + "\n");
		return rc;
	}
	auto		t = [&](int i) { return p.entry.texts[i] ? *p.entry.texts[i] : std::string("NULL"); };

	say("VERIFIED: " + what + " (" + t(0) + " " + t(1) + "." + t(2) + " " + t(3) + " row " + t(4) +
		" at " + iso_time(p.entry.event_time) + ") is entry " + std::to_string(p.leaf_index + 1) +
		" of " + std::to_string(p.tree_size) + " in the checkpoint of log " + p.log_id + " (" +
		std::to_string(cp.total) + " entries) signed by " + key.name + "\n");
	return kExitOk;
}

/* ---- decrypt ------------------------------------------------------------------ */

int
cmd_decrypt(const std::string &key_path, const std::string &conninfo, const std::string &bundle,
			bool as_json)
{
	X25519Opener key;

	load_x25519_private_key(key_path, key);

	Decryption	d(key, as_json, [](const std::string &line) {
		if (std::fwrite(line.data(), 1, line.size(), stdout) != line.size())
			throw Failure(kExitCannotVerify, "cannot write the output");
	});

	if (!conninfo.empty())
	{
		Database	db(conninfo);

		db.begin_snapshot();
		db.contexts([&](int64_t id, const Field (&f)[kContextFields]) { d.add_context(id, f); });
		db.entries([&](const EntryRow &r) { d.feed(r); });
		db.commit();
	}
	else
	{
		BundleSink	sink;

		sink.header = [](const std::string &) {};
		sink.checkpoint = [](const StoredCheckpoint &) {};
		sink.context = [&](int64_t id, const Field (&f)[kContextFields]) { d.add_context(id, f); };
		sink.contexts_done = []() {};
		sink.entry = [&](const EntryRow &r) { d.feed(r); };
		read_bundle(bundle, sink);
	}
	std::string summary;
	int			status = d.finish(summary);

	std::fflush(stdout);
	std::fputs(summary.c_str(), stderr);
	return status;
}

}								/* namespace */

int
main(int argc, char **argv)
{
	CLI::App	app{"sensitive-audit: independent verifier, signer and witness of a sensitive_audit log"};

	app.require_subcommand(1);
	app.set_help_all_flag("--help-all", "all commands' help");

	std::string name, priv, pub, db, key, state, out, bundle, html, proof_file;
	bool		as_json = false, full = false;
	int			jobs = static_cast<int>(std::min(4u, std::max(1u, std::thread::hardware_concurrency())));
	int64_t		chain = -1, seq = -1;

	auto	   *keygen = app.add_subcommand("keygen", "make an Ed25519 key pair for signing checkpoints");
	keygen->add_option("--name", name, "key name (e.g. the log's origin sensitive_audit/<log id>)")->required();
	keygen->add_option("--private", priv, "private key file to create (mode 0600)")->required();
	keygen->add_option("--public", pub, "public key file to create (signed-note verifier key)")->required();

	auto	   *checkpoint = app.add_subcommand("checkpoint", "verify what is new, sign a checkpoint, keep it in DIR and the database");
	checkpoint->add_option("--db", db, "libpq connection string")->required();
	checkpoint->add_option("--key", key, "private key file")->required();
	checkpoint->add_option("--state", state, "state directory (the witness's memory)")->required();
	checkpoint->add_flag("--full", full, "re-verify every entry, not only those after DIR's latest checkpoint");

	auto	   *verify = app.add_subcommand("verify", "verify a database or a bundle");
	auto	   *vdb = verify->add_option("--db", db, "libpq connection string");
	auto	   *vb = verify->add_option("--bundle", bundle, "bundle file made by export");
	vdb->excludes(vb);
	verify->add_option("--pubkey", pub, "public key file")->required();
	verify->add_option("--state", state, "state directory whose latest checkpoint the log must extend");
	verify->add_flag("--json", as_json, "report as JSON");
	verify->add_option("--html", html, "also write a self-contained HTML report to this file");
	verify->add_option("--jobs", jobs, "with --db: connections reading chains in parallel (default: cores, at most 4)")
		->check(CLI::Range(1, 64));

	auto	   *exp = app.add_subcommand("export", "write the whole log to a bundle file");
	exp->add_option("--db", db, "libpq connection string")->required();
	exp->add_option("--out", out, "bundle file to create")->required();

	auto	   *prove = app.add_subcommand("prove", "write a self-contained proof that an entry is in a signed checkpoint");
	prove->add_option("--db", db, "libpq connection string")->required();
	prove->add_option("--chain", chain, "chain number")->required();
	prove->add_option("--seq", seq, "entry seq")->required();
	prove->add_option("--out", out, "proof file to create")->required();

	auto	   *vproof = app.add_subcommand("verify-proof", "check a proof file (no database needed)");
	vproof->add_option("FILE", proof_file, "proof file")->required();
	vproof->add_option("--pubkey", pub, "public key file")->required();

	auto	   *decrypt = app.add_subcommand("decrypt", "print the entries with the values sealed to an X25519 key in clear");
	decrypt->add_option("--key", key, "X25519 private key file (PKCS#8 PEM, openssl genpkey -algorithm X25519)")->required();
	auto	   *ddb = decrypt->add_option("--db", db, "libpq connection string");
	auto	   *dbundle = decrypt->add_option("--bundle", bundle, "bundle file made by export");
	ddb->excludes(dbundle);
	decrypt->add_flag("--json", as_json, "one canonical JSON object per entry per line");

	try
	{
		app.parse(argc, argv);
	}
	catch (const CLI::CallForHelp &e)
	{
		return app.exit(e);
	}
	catch (const CLI::CallForAllHelp &e)
	{
		return app.exit(e);
	}
	catch (const CLI::ParseError &e)
	{
		app.exit(e);
		return kExitCannotVerify;
	}

	try
	{
		if (*keygen)
			return cmd_keygen(name, priv, pub);
		if (*checkpoint)
			return cmd_checkpoint(db, key, state, full);
		if (*verify)
		{
			if (db.empty() == bundle.empty())
				throw Failure(kExitCannotVerify, "verify needs exactly one of --db and --bundle");
			if (!db.empty())
				return cmd_verify_db(db, pub, state, as_json, html, jobs);
			return cmd_verify_bundle(bundle, pub, state, as_json, html);
		}
		if (*exp)
			return cmd_export(db, out);
		if (*prove)
			return cmd_prove(db, chain, seq, out);
		if (*vproof)
			return cmd_verify_proof(proof_file, pub);
		if (*decrypt)
		{
			if (db.empty() == bundle.empty())
				throw Failure(kExitCannotVerify, "decrypt needs exactly one of --db and --bundle");
			return cmd_decrypt(key, db, bundle, as_json);
		}
	}
	catch (const Failure &e)
	{
		std::fprintf(stderr, "sensitive-audit: %s\n", e.what());
		return e.status();
	}
	catch (const std::exception &e)
	{
		std::fprintf(stderr, "sensitive-audit: could not verify: %s\n", e.what());
		return kExitCannotVerify;
	}
	return kExitCannotVerify;
}
