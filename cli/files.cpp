/*
 * files.cpp — key files, the state directory, bundles and proof files
 * (formats: docs/FORMAT.md, section 10).
 *
 * Every JSON text here is written in one canonical spelling (nlohmann's
 * compact dump: keys sorted, no whitespace, every value a string, null or
 * array) and a reader accepts only that spelling: it re-serialises what it
 * parsed and compares byte for byte.  So an edit anywhere in a file either
 * changes a value that some check covers or makes the file unreadable;
 * nothing in it can change silently.  A bundle also ends with the SHA-256
 * of everything before its last line, which covers the fields no entry
 * hash or signature does (checkpoint ids, unused contexts).
 */
#include "core/cpp_only.hpp"

#include "files.hpp"

#include <cerrno>
#include <cinttypes>
#include <cstdio>
#include <cstring>
#include <fstream>
#include <limits>
#include <set>

#include <dirent.h>
#include <fcntl.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <unistd.h>

#include <nlohmann/json.hpp>
#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "core/encoding.hpp"
#include "core/sa_core.h"

namespace sa_cli
{

using json = nlohmann::json;
using namespace sensitive_audit;

/* Field names and JSON keys, from the one list of an entry's fields. */
#define SA_NAME_(name, ...) #name,
const char *const kEntryTextNames[SA_TEXT_NFIELDS] = {SA_TEXT_FIELDS(SA_NAME_)};
#undef SA_NAME_
/* ", name" for a field: its key appended to a list of keys */
#define SA_KEY_(name, ...) , #name

namespace
{

std::string
errno_text()
{
	return std::strerror(errno);
}

/* Canonical one-line JSON; Failure(2) for text that is not UTF-8. */
std::string
dump(const json &j)
{
	try
	{
		return j.dump();
	}
	catch (const json::exception &)
	{
		throw Failure(kExitCannotVerify, "a value is not valid UTF-8 and cannot be written as JSON");
	}
}

/* Parses one canonical JSON object; Failure(2) otherwise. */
json
parse_canonical(const std::string &text, const std::string &where)
{
	json		j;

	try
	{
		j = json::parse(text);
	}
	catch (const json::exception &)
	{
		throw Failure(kExitCannotVerify, where + ": not valid JSON");
	}
	if (!j.is_object())
		throw Failure(kExitCannotVerify, where + ": not a JSON object");
	if (dump(j) != text)
		throw Failure(kExitCannotVerify, where + ": not in the one canonical spelling (FORMAT.md 10.1)");
	return j;
}

void
expect_keys(const json &j, std::initializer_list<const char *> keys, const std::string &where)
{
	std::set<std::string> want(keys.begin(), keys.end());
	std::set<std::string> have;

	for (auto it = j.begin(); it != j.end(); ++it)
		have.insert(it.key());
	if (want != have)
		throw Failure(kExitCannotVerify, where + ": unexpected or missing members");
}

const std::string &
get_str(const json &j, const char *key, const std::string &where)
{
	auto		it = j.find(key);

	if (it == j.end() || !it->is_string())
		throw Failure(kExitCannotVerify, where + ": \"" + key + "\" is missing or not a string");
	return it->get_ref<const std::string &>();
}

std::optional<std::string>
get_opt_str(const json &j, const char *key, const std::string &where)
{
	auto		it = j.find(key);

	if (it == j.end())
		throw Failure(kExitCannotVerify, where + ": \"" + key + "\" is missing");
	if (it->is_null())
		return std::nullopt;
	if (!it->is_string())
		throw Failure(kExitCannotVerify, where + ": \"" + key + "\" is not a string or null");
	return it->get<std::string>();
}

/* Decimal without leading zeros (and "-" only before a nonzero number when signed). */
bool
parse_decimal(const std::string &s, bool allow_negative, bool &negative, uint64_t &value)
{
	size_t		i = 0;

	negative = false;
	if (allow_negative && !s.empty() && s[0] == '-')
	{
		negative = true;
		i = 1;
	}
	if (i >= s.size() || (s[i] == '0' && s.size() > i + 1) || (negative && s == "-0"))
		return false;
	value = 0;
	for (; i < s.size(); i++)
	{
		if (s[i] < '0' || s[i] > '9')
			return false;
		uint64_t	d = static_cast<uint64_t>(s[i] - '0');

		if (value > (std::numeric_limits<uint64_t>::max() - d) / 10)
			return false;
		value = value * 10 + d;
	}
	return true;
}

uint64_t
get_u64(const json &j, const char *key, const std::string &where)
{
	bool		neg;
	uint64_t	v;

	if (!parse_decimal(get_str(j, key, where), false, neg, v))
		throw Failure(kExitCannotVerify, where + ": \"" + key + "\" is not a decimal number");
	return v;
}

int64_t
get_i64(const json &j, const char *key, const std::string &where, int64_t lo, int64_t hi)
{
	bool		neg;
	uint64_t	v;

	if (!parse_decimal(get_str(j, key, where), true, neg, v))
		throw Failure(kExitCannotVerify, where + ": \"" + key + "\" is not a decimal number");
	if (!neg && v <= static_cast<uint64_t>(hi))
		return static_cast<int64_t>(v);
	if (neg && v <= static_cast<uint64_t>(-(lo + 1)) + 1)
		return static_cast<int64_t>(0 - v);
	throw Failure(kExitCannotVerify, where + ": \"" + key + "\" is out of range");
}

Digest
get_digest(const json &j, const char *key, const std::string &where)
{
	Digest		d;

	if (!digest_from_hex(get_str(j, key, where), d))
		throw Failure(kExitCannotVerify, where + ": \"" + key + "\" is not 64 lower-case hex digits");
	return d;
}

std::vector<Digest>
get_digests(const json &j, const char *key, const std::string &where)
{
	auto		it = j.find(key);

	if (it == j.end() || !it->is_array())
		throw Failure(kExitCannotVerify, where + ": \"" + key + "\" is missing or not an array");
	if (it->size() > 64)
		throw Failure(kExitCannotVerify, where + ": \"" + key + "\" is longer than any tree allows");
	std::vector<Digest> out;

	for (const auto &v : *it)
	{
		Digest		d;

		if (!v.is_string() || !digest_from_hex(v.get<std::string>(), d))
			throw Failure(kExitCannotVerify, where + ": \"" + key + "\" holds a malformed hash");
		out.push_back(d);
	}
	return out;
}

json
opt(const Field &f)
{
	if (f.null)
		return nullptr;
	return std::string(f.data ? f.data : "", f.len);
}

json
opt_hex(const Field &f)
{
	if (f.null)
		return nullptr;
	return to_hex(reinterpret_cast<const uint8_t *>(f.data), f.len);
}

json
digests(const std::vector<Digest> &v)
{
	json		a = json::array();

	for (const auto &d : v)
		a.push_back(to_hex(d.data(), d.size()));
	return a;
}

/* Writes text to a new file at path, durably; EEXIST is refused. */
void
write_exclusive(const std::string &path, const std::string &text, unsigned mode)
{
	int			fd = ::open(path.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, mode);

	if (fd < 0)
	{
		if (errno == EEXIST)
			throw Failure(kExitCannotVerify, path + " exists already; refusing to overwrite it");
		throw Failure(kExitCannotVerify, "cannot create " + path + ": " + errno_text());
	}
	size_t		done = 0;

	while (done < text.size())
	{
		ssize_t		n = ::write(fd, text.data() + done, text.size() - done);

		if (n < 0 && errno == EINTR)
			continue;
		if (n <= 0)
		{
			std::string err = errno_text();

			::close(fd);
			::unlink(path.c_str());
			throw Failure(kExitCannotVerify, "cannot write " + path + ": " + err);
		}
		done += static_cast<size_t>(n);
	}
	if (::fsync(fd) != 0 || ::close(fd) != 0)
		throw Failure(kExitCannotVerify, "cannot write " + path + ": " + errno_text());
}

void
fsync_dir(const std::string &dir)
{
	int			fd = ::open(dir.c_str(), O_RDONLY | O_DIRECTORY | O_CLOEXEC);

	if (fd >= 0)
	{
		(void) ::fsync(fd);
		::close(fd);
	}
}

bool
exists(const std::string &path)
{
	struct stat st;

	return ::lstat(path.c_str(), &st) == 0;
}

std::string
strip_newline(std::string s, const std::string &path)
{
	if (s.empty() || s.back() != '\n')
		throw Failure(kExitCannotVerify, path + ": truncated (no final line feed)");
	s.pop_back();
	if (s.find('\n') != std::string::npos)
		throw Failure(kExitCannotVerify, path + ": more than one line");
	return s;
}

}								/* namespace */

std::string
read_file(const std::string &path, const char *what)
{
	std::ifstream in(path, std::ios::binary);

	if (!in)
		throw Failure(kExitCannotVerify, std::string("cannot read ") + what + " " + path + ": " +
					  errno_text());
	std::string s((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());

	if (in.bad())
		throw Failure(kExitCannotVerify, std::string("cannot read ") + what + " " + path);
	if (s.empty())
		throw Failure(kExitCannotVerify, std::string(what) + " " + path + " is empty");
	return s;
}

void
write_new_file(const std::string &path, const std::string &text, unsigned mode)
{
	write_exclusive(path, text, mode);
}

void
write_replace_file(const std::string &path, const std::string &text, unsigned mode)
{
	std::string tmp = path + ".partial";

	::unlink(tmp.c_str());
	write_exclusive(tmp, text, mode);
	if (::rename(tmp.c_str(), path.c_str()) != 0)
	{
		std::string err = errno_text();

		::unlink(tmp.c_str());
		throw Failure(kExitCannotVerify, "cannot write " + path + ": " + err);
	}
}

VerifierKey
load_verifier_key(const std::string &path)
{
	std::string text = strip_newline(read_file(path, "public key file"), path);
	VerifierKey key;

	if (parse_verifier_key(text, key) != SA_OK)
		throw Failure(kExitCannotVerify, path + ": not a signed-note verifier key (name+keyid+base64)");
	return key;
}

SignerKey
load_signer_key(const std::string &path)
{
	struct stat st;

	if (::stat(path.c_str(), &st) == 0 && (st.st_mode & 077) != 0)
		throw Failure(kExitCannotVerify, "private key file " + path +
					  " is readable or writable by others; it must be mode 0600");
	std::string text = read_file(path, "private key file");
	SignerKey	key;

	text = strip_newline(text, path);
	int			rc = parse_signer_key(text, key);

	OPENSSL_cleanse(text.data(), text.size());
	if (rc != SA_OK)
		throw Failure(kExitCannotVerify, path + ": not a signed-note signer key");
	return key;
}

/* ---- The state directory ------------------------------------------------------- */

StateDir::StateDir(const std::string &dir, bool writer) : dir_(dir)
{
	if (writer && ::mkdir(dir.c_str(), 0700) != 0 && errno != EEXIST)
		throw Failure(kExitCannotVerify, "cannot create state directory " + dir + ": " + errno_text());
	struct stat st;

	if (::stat(dir.c_str(), &st) != 0 || !S_ISDIR(st.st_mode))
		throw Failure(kExitCannotVerify, "state directory " + dir + " does not exist");
	std::string lock = dir + "/lock";

	lock_fd_ = ::open(lock.c_str(), (writer ? O_RDWR | O_CREAT : O_RDONLY) | O_CLOEXEC, 0600);
	if (lock_fd_ < 0 && !writer && errno == ENOENT)
		return;					/* a reader of a directory nobody wrote yet */
	if (lock_fd_ < 0)
		throw Failure(kExitCannotVerify, "cannot open " + lock + ": " + errno_text());
	while (::flock(lock_fd_, writer ? LOCK_EX : LOCK_SH) != 0)
		if (errno != EINTR)
			throw Failure(kExitCannotVerify, "cannot lock " + lock + ": " + errno_text());
}

StateDir::~StateDir()
{
	if (lock_fd_ >= 0)
		::close(lock_fd_);		/* releases the flock */
}

std::optional<StateCheckpoint>
StateDir::latest(const VerifierKey &key) const
{
	std::string pointer = dir_ + "/latest";

	if (!exists(pointer))
	{
		DIR		   *d = ::opendir(dir_.c_str());
		bool		any = false;

		if (d == nullptr)
			throw Failure(kExitCannotVerify, "cannot read state directory " + dir_);
		while (struct dirent *de = ::readdir(d))
			if (std::strncmp(de->d_name, "checkpoint-", 11) == 0)
				any = true;
		::closedir(d);
		if (any)
			throw Failure(kExitCannotVerify, "state directory " + dir_ +
						  " holds checkpoints but no pointer file 'latest'");
		return std::nullopt;
	}

	StateCheckpoint sc;

	sc.name = strip_newline(read_file(pointer, "state pointer file"), pointer);
	if (sc.name.size() != 17 || sc.name.compare(0, 11, "checkpoint-") != 0 ||
		sc.name.find_first_not_of("0123456789", 11) != std::string::npos)
		throw Failure(kExitCannotVerify, pointer + ": not a checkpoint name");

	std::string note_path = dir_ + "/" + sc.name + ".note";

	sc.note = read_file(note_path, "state checkpoint");

	std::string text;

	int			rc = verify_note(sc.note, &key, 1, &text, nullptr);

	if (rc == SA_ERR_SYNTAX)
		throw Failure(kExitCannotVerify, note_path + ": not a signed note");
	if (rc != SA_OK)
		throw Failure(kExitTampered, "the state directory's latest checkpoint " + note_path +
					  " has no valid signature by the key " + key.name +
					  " (a different key, or the file was altered)");
	if (parse_log_checkpoint(text, sc.body) != SA_OK)
		throw Failure(kExitCannotVerify, note_path + ": not a sensitive_audit checkpoint");

	std::string tree_path = dir_ + "/" + sc.name + ".tree";
	json		t = parse_canonical(strip_newline(read_file(tree_path, "state tree file"), tree_path),
								tree_path);

	expect_keys(t, {"chains", "log_id"}, tree_path);
	if (get_str(t, "log_id", tree_path) != sc.body.log_id || !t["chains"].is_array() ||
		t["chains"].size() != sc.body.chains.size())
		throw Failure(kExitCannotVerify, tree_path + ": does not match " + note_path);
	for (size_t i = 0; i < sc.body.chains.size(); i++)
	{
		const json &c = t["chains"][i];
		const ChainHead &head = sc.body.chains[i];
		std::string where = tree_path + " chain entry " + std::to_string(i);

		if (!c.is_object())
			throw Failure(kExitCannotVerify, where + ": not an object");
		expect_keys(c, {"chain", "last_hash", "size", "subtrees"}, where);
		ChainResume r;

		r.chain = static_cast<uint32_t>(get_u64(c, "chain", where));
		r.size = get_u64(c, "size", where);
		r.last_hash = get_digest(c, "last_hash", where);
		r.subtrees = get_digests(c, "subtrees", where);
		/* The saved tree must lead to the signed root. */
		auto		b = MerkleBuilder::create();
		Digest		root;

		if (r.chain != head.chain || r.size != head.size || !b ||
			b->resume(r.size, r.subtrees.data(), r.subtrees.size()) != SA_OK ||
			b->root(root) != SA_OK || root != head.root)
			throw Failure(kExitCannotVerify, where + ": the saved tree does not lead to the root of chain " +
						  std::to_string(head.chain) + " in " + note_path);
		sc.chains.push_back(std::move(r));
	}
	return sc;
}

std::string
StateDir::append(const std::string &note, const std::string &log_id,
				 const std::vector<ChainResume> &chains)
{
	uint64_t	next = 1;
	std::string pointer = dir_ + "/latest";

	if (exists(pointer))
	{
		std::string cur = strip_newline(read_file(pointer, "state pointer file"), pointer);

		next = std::stoull(cur.substr(11)) + 1;
	}
	char		name[32];

	for (;; next++)
	{
		std::snprintf(name, sizeof(name), "checkpoint-%06" PRIu64, next);
		if (!exists(dir_ + "/" + name + ".note") && !exists(dir_ + "/" + name + ".tree"))
			break;
	}

	json		t;

	t["log_id"] = log_id;
	t["chains"] = json::array();
	for (const auto &c : chains)
	{
		json		o;

		o["chain"] = std::to_string(c.chain);
		o["size"] = std::to_string(c.size);
		o["last_hash"] = to_hex(c.last_hash.data(), c.last_hash.size());
		o["subtrees"] = digests(c.subtrees);
		t["chains"].push_back(o);
	}
	/* The tree state first: a note without it would be unreadable. */
	write_exclusive(dir_ + "/" + name + ".tree", dump(t) + "\n", 0600);
	write_exclusive(dir_ + "/" + name + ".note", note, 0600);

	std::string tmp = dir_ + "/latest.tmp";

	::unlink(tmp.c_str());
	write_exclusive(tmp, std::string(name) + "\n", 0600);
	if (::rename(tmp.c_str(), pointer.c_str()) != 0)
		throw Failure(kExitCannotVerify, "cannot update " + pointer + ": " + errno_text());
	fsync_dir(dir_);
	return name;
}

/* ---- Bundles ------------------------------------------------------------------- */

struct BundleWriter::Impl
{
	std::string path;
	std::string tmp;
	FILE	   *f = nullptr;
	EVP_MD_CTX *md = nullptr;
	uint64_t	ncheckpoints = 0;
	uint64_t	ncontexts = 0;
	uint64_t	nentries = 0;
	std::string buf;
};

BundleWriter::BundleWriter(const std::string &path, const std::string &log_id)
	: impl_(std::make_unique<Impl>())
{
	impl_->path = path;
	impl_->tmp = path + ".partial";
	if (exists(path))
		throw Failure(kExitCannotVerify, path + " exists already; refusing to overwrite it");
	int			fd = ::open(impl_->tmp.c_str(), O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0644);

	if (fd < 0)
		throw Failure(kExitCannotVerify, "cannot create " + impl_->tmp + ": " + errno_text());
	impl_->f = ::fdopen(fd, "wb");
	impl_->md = EVP_MD_CTX_new();
	if (impl_->f == nullptr || impl_->md == nullptr ||
		EVP_DigestInit_ex(impl_->md, EVP_sha256(), nullptr) != 1)
		throw Failure(kExitCannotVerify, "cannot set up writing " + impl_->tmp);

	json		h;

	h["type"] = "header";
	h["format"] = "sensitive_audit bundle";
	h["version"] = "1";
	h["log_id"] = log_id;
	line(dump(h));
}

BundleWriter::~BundleWriter()
{
	if (impl_->f != nullptr)
	{
		::fclose(impl_->f);
		::unlink(impl_->tmp.c_str());
	}
	EVP_MD_CTX_free(impl_->md);
}

void
BundleWriter::line(const std::string &text)
{
	impl_->buf = text;
	impl_->buf.push_back('\n');
	if (EVP_DigestUpdate(impl_->md, impl_->buf.data(), impl_->buf.size()) != 1 ||
		std::fwrite(impl_->buf.data(), 1, impl_->buf.size(), impl_->f) != impl_->buf.size())
		throw Failure(kExitCannotVerify, "cannot write " + impl_->tmp + ": " + errno_text());
}

void
BundleWriter::checkpoint(const StoredCheckpoint &cp)
{
	json		j;

	j["type"] = "checkpoint";
	j["id"] = std::to_string(cp.id);
	j["note"] = cp.note;
	line(dump(j));
	impl_->ncheckpoints++;
}

void
BundleWriter::context(int64_t id, const Field (&fields)[kContextFields])
{
	json		j;

	j["type"] = "context";
	j["id"] = std::to_string(id);
	for (int i = 0; i < kContextFields; i++)
		j[kContextFieldNames[i]] = opt(fields[i]);
	line(dump(j));
	impl_->ncontexts++;
}

std::string
entry_line(const EntryRow &r, const std::vector<std::pair<std::string, std::optional<std::string>>> &extra)
{
	json		j;

	for (const auto &m : extra)
		j[m.first] = m.second ? json(*m.second) : json(nullptr);
	j["type"] = "entry";
	j["chain"] = std::to_string(static_cast<int32_t>(r.chain));
	j["seq"] = std::to_string(static_cast<int64_t>(r.seq));
	j["txid"] = std::to_string(r.txid);
	j["event_time"] = std::to_string(r.event_time);
	j["context"] = std::to_string(r.context);
	j["format"] = std::to_string(static_cast<int16_t>(r.format));
#define SA_ROW_TEXT_(name, ...) j[#name] = opt(r.name);
	SA_ENTRY_TEXT_FIELDS(SA_ROW_TEXT_)
#undef SA_ROW_TEXT_
	j["backend_pid"] = std::to_string(r.backend_pid);
	j["prev_hash"] = opt_hex(r.prev_hash);
	j["hash"] = opt_hex(r.hash);
	return dump(j);
}

std::string
json_text(const std::string &s)
{
	/* Bytes that are not UTF-8 are shown as U+FFFD: this is for reading, not for parsing back. */
	return json(s).dump(-1, ' ', false, json::error_handler_t::replace);
}

void
BundleWriter::entry(const EntryRow &r)
{
	line(entry_line(r));
	impl_->nentries++;
}

void
BundleWriter::finish()
{
	unsigned char d[EVP_MAX_MD_SIZE];
	unsigned int dlen = 0;

	if (EVP_DigestFinal_ex(impl_->md, d, &dlen) != 1)
		throw Failure(kExitCannotVerify, "SHA-256 failed");

	json		e;

	e["type"] = "end";
	e["checkpoints"] = std::to_string(impl_->ncheckpoints);
	e["contexts"] = std::to_string(impl_->ncontexts);
	e["entries"] = std::to_string(impl_->nentries);
	e["sha256"] = to_hex(d, dlen);
	impl_->buf = dump(e) + "\n";
	if (std::fwrite(impl_->buf.data(), 1, impl_->buf.size(), impl_->f) != impl_->buf.size() ||
		std::fflush(impl_->f) != 0 || ::fsync(::fileno(impl_->f)) != 0)
		throw Failure(kExitCannotVerify, "cannot write " + impl_->tmp + ": " + errno_text());
	int			rc = ::fclose(impl_->f);

	impl_->f = nullptr;
	if (rc != 0)
		throw Failure(kExitCannotVerify, "cannot write " + impl_->tmp + ": " + errno_text());
	/* link() never replaces: a file created meanwhile at path is kept. */
	if (::link(impl_->tmp.c_str(), impl_->path.c_str()) != 0)
	{
		std::string err = errno_text();

		::unlink(impl_->tmp.c_str());
		throw Failure(kExitCannotVerify, "cannot create " + impl_->path + ": " + err);
	}
	::unlink(impl_->tmp.c_str());
}

void
read_bundle(const std::string &path, const BundleSink &sink)
{
	FILE	   *f = std::fopen(path.c_str(), "rb");

	if (f == nullptr)
		throw Failure(kExitCannotVerify, "cannot read bundle " + path + ": " + errno_text());
	std::unique_ptr<FILE, int (*)(FILE *)> guard(f, std::fclose);
	std::unique_ptr<EVP_MD_CTX, void (*)(EVP_MD_CTX *)> md(EVP_MD_CTX_new(), EVP_MD_CTX_free);

	if (!md || EVP_DigestInit_ex(md.get(), EVP_sha256(), nullptr) != 1)
		throw Failure(kExitCannotVerify, "SHA-256 unavailable");

	enum Phase
	{
		kHeader, kCheckpoints, kContexts, kEntries, kEnd
	}			phase = kHeader;
	uint64_t	ncheckpoints = 0, ncontexts = 0, nentries = 0, lineno = 0;
	/* getline() grows one buffer, freed on every way out. */
	struct LineBuffer
	{
		char	   *p = nullptr;
		size_t		cap = 0;
		~LineBuffer() { std::free(p); }
	}			line;
	std::vector<uint8_t> prev, hash;

	for (;;)
	{
		ssize_t		n = ::getline(&line.p, &line.cap, f);
		const char *lbuf = line.p;

		if (n < 0)
			break;
		lineno++;
		std::string where = path + " line " + std::to_string(lineno);

		if (phase == kEnd)
			throw Failure(kExitCannotVerify, where + ": data after the end line");
		if (lbuf[n - 1] != '\n')
			throw Failure(kExitCannotVerify, where + ": truncated (no final line feed)");

		std::string text(lbuf, static_cast<size_t>(n - 1));
		json		j = parse_canonical(text, where);
		const std::string &type = get_str(j, "type", where);

		if (type != "end" && EVP_DigestUpdate(md.get(), lbuf, static_cast<size_t>(n)) != 1)
			throw Failure(kExitCannotVerify, "SHA-256 failed");

		if (phase == kHeader)
		{
			if (type != "header")
				throw Failure(kExitCannotVerify, where + ": not a sensitive_audit bundle (no header line)");
			expect_keys(j, {"format", "log_id", "type", "version"}, where);
			if (get_str(j, "format", where) != "sensitive_audit bundle")
				throw Failure(kExitCannotVerify, where + ": not a sensitive_audit bundle");
			if (get_str(j, "version", where) != "1")
				throw Failure(kExitCannotVerify, where + ": unknown bundle version \"" +
							  get_str(j, "version", where) + "\" (this program reads version 1)");
			const std::string &log_id = get_str(j, "log_id", where);

			if (!log_id.empty() && !valid_log_id(log_id))
				throw Failure(kExitCannotVerify, where + ": malformed log id");
			sink.header(log_id);
			phase = kCheckpoints;
			continue;
		}
		if (type == "checkpoint")
		{
			if (phase != kCheckpoints)
				throw Failure(kExitCannotVerify, where + ": checkpoint out of place");
			expect_keys(j, {"id", "note", "type"}, where);
			StoredCheckpoint cp;

			cp.id = get_i64(j, "id", where, std::numeric_limits<int64_t>::min(),
							std::numeric_limits<int64_t>::max());
			cp.note = get_str(j, "note", where);
			sink.checkpoint(cp);
			ncheckpoints++;
		}
		else if (type == "context")
		{
			if (phase != kCheckpoints && phase != kContexts)
				throw Failure(kExitCannotVerify, where + ": context out of place");
			phase = kContexts;
			expect_keys(j, {"id", "type" SA_CONTEXT_TEXT_FIELDS(SA_KEY_)}, where);
			std::optional<std::string> v[kContextFields];
			Field		fields[kContextFields];

			for (int i = 0; i < kContextFields; i++)
			{
				v[i] = get_opt_str(j, kContextFieldNames[i], where);
				if (v[i])
					fields[i] = Field{v[i]->data(), v[i]->size(), false};
			}
			sink.context(get_i64(j, "id", where, std::numeric_limits<int64_t>::min(),
								 std::numeric_limits<int64_t>::max()),
						 fields);
			ncontexts++;
		}
		else if (type == "entry")
		{
			if (phase != kEntries)
			{
				sink.contexts_done();
				phase = kEntries;
			}
			expect_keys(j, {"type", "chain", "seq", "txid", "event_time", "context", "format",
							"backend_pid", "prev_hash", "hash" SA_ENTRY_TEXT_FIELDS(SA_KEY_)}, where);
			EntryRow	r;

			r.chain = static_cast<uint32_t>(get_i64(j, "chain", where, INT32_MIN, INT32_MAX));
			r.seq = static_cast<uint64_t>(get_i64(j, "seq", where, INT64_MIN, INT64_MAX));
			r.txid = get_u64(j, "txid", where);
			r.event_time = get_i64(j, "event_time", where, INT64_MIN, INT64_MAX);
			r.context = get_i64(j, "context", where, INT64_MIN, INT64_MAX);
			r.format = static_cast<uint16_t>(get_i64(j, "format", where, INT16_MIN, INT16_MAX));
			r.backend_pid = static_cast<int32_t>(get_i64(j, "backend_pid", where, INT32_MIN, INT32_MAX));
			std::optional<std::string> texts[SA_ENTRY_TEXT_NFIELDS];
			int			t = 0;

#define SA_ROW_TEXT_(name, ...) \
			texts[t] = get_opt_str(j, #name, where); \
			if (texts[t]) \
				r.name = Field{texts[t]->data(), texts[t]->size(), false}; \
			t++;
			SA_ENTRY_TEXT_FIELDS(SA_ROW_TEXT_)
#undef SA_ROW_TEXT_
			auto		ph = get_opt_str(j, "prev_hash", where);
			auto		hh = get_opt_str(j, "hash", where);

			if (ph)
			{
				if (!from_hex(*ph, prev))
					throw Failure(kExitCannotVerify, where + ": \"prev_hash\" is not lower-case hex");
				r.prev_hash = Field{reinterpret_cast<const char *>(prev.data()), prev.size(), false};
			}
			if (hh)
			{
				if (!from_hex(*hh, hash))
					throw Failure(kExitCannotVerify, where + ": \"hash\" is not lower-case hex");
				r.hash = Field{reinterpret_cast<const char *>(hash.data()), hash.size(), false};
			}
			sink.entry(r);
			nentries++;
		}
		else if (type == "end")
		{
			expect_keys(j, {"checkpoints", "contexts", "entries", "sha256", "type"}, where);
			unsigned char d[EVP_MAX_MD_SIZE];
			unsigned int dlen = 0;

			if (EVP_DigestFinal_ex(md.get(), d, &dlen) != 1)
				throw Failure(kExitCannotVerify, "SHA-256 failed");
			if (get_u64(j, "checkpoints", where) != ncheckpoints ||
				get_u64(j, "contexts", where) != ncontexts || get_u64(j, "entries", where) != nentries)
				throw Failure(kExitCannotVerify, where + ": the counts of the end line do not match the lines read");
			if (get_str(j, "sha256", where) != to_hex(d, dlen))
				throw Failure(kExitCannotVerify, where + ": the bundle's SHA-256 does not match its contents (the file was altered or damaged)");
			if (phase != kEntries)
				sink.contexts_done();
			phase = kEnd;
		}
		else
			throw Failure(kExitCannotVerify, where + ": unknown line type \"" + type + "\"");
	}
	if (std::ferror(f))
		throw Failure(kExitCannotVerify, "cannot read bundle " + path + ": " + errno_text());
	if (lineno == 0)
		throw Failure(kExitCannotVerify, "bundle " + path + " is empty");
	if (phase != kEnd)
		throw Failure(kExitCannotVerify, "bundle " + path + " is truncated: no end line after line " +
					  std::to_string(lineno));
}

/* ---- Proof files --------------------------------------------------------------- */

std::string
encode_proof(const Proof &p)
{
	json		e;

	e["format"] = std::to_string(p.entry.format);
	e["chain"] = std::to_string(p.entry.chain);
	e["seq"] = std::to_string(p.entry.seq);
	e["txid"] = std::to_string(p.entry.txid);
	e["event_time"] = std::to_string(p.entry.event_time);
	for (size_t i = 0; i < SA_TEXT_NFIELDS; i++)
		e[kEntryTextNames[i]] = p.entry.texts[i] ? json(*p.entry.texts[i]) : json(nullptr);
	e["backend_pid"] = std::to_string(p.entry.backend_pid);
	e["prev_hash"] = to_hex(p.entry.prev_hash.data(), p.entry.prev_hash.size());

	json		j;

	j["format"] = "sensitive_audit proof";
	j["version"] = "1";
	j["log_id"] = p.log_id;
	j["entry"] = e;
	j["entry_hash"] = to_hex(p.entry_hash.data(), p.entry_hash.size());
	j["leaf_index"] = std::to_string(p.leaf_index);
	j["tree_size"] = std::to_string(p.tree_size);
	j["path"] = digests(p.path);
	j["checkpoint"] = p.checkpoint;
	j["record_index"] = std::to_string(p.record_index);
	j["record_count"] = std::to_string(p.record_count);
	j["record_path"] = digests(p.record_path);
	return dump(j) + "\n";
}

Proof
parse_proof(const std::string &text)
{
	const std::string where = "proof file";

	if (text.empty() || text.back() != '\n')
		throw Failure(kExitCannotVerify, where + ": truncated (no final line feed)");
	json		j = parse_canonical(text.substr(0, text.size() - 1), where);
	Proof		p;

	if (!j.contains("format") || !j["format"].is_string() || j["format"] != "sensitive_audit proof")
		throw Failure(kExitCannotVerify, where + ": not a sensitive_audit proof");
	if (get_str(j, "version", where) != "1")
		throw Failure(kExitCannotVerify, where + ": unknown proof version \"" +
					  get_str(j, "version", where) + "\" (this program reads version 1)");
	expect_keys(j, {"checkpoint", "entry", "entry_hash", "format", "leaf_index", "log_id", "path",
					"record_count", "record_index", "record_path", "tree_size", "version"}, where);
	p.log_id = get_str(j, "log_id", where);
	p.entry_hash = get_digest(j, "entry_hash", where);
	p.leaf_index = get_u64(j, "leaf_index", where);
	p.tree_size = get_u64(j, "tree_size", where);
	p.path = get_digests(j, "path", where);
	p.checkpoint = get_str(j, "checkpoint", where);
	p.record_index = get_u64(j, "record_index", where);
	p.record_count = get_u64(j, "record_count", where);
	p.record_path = get_digests(j, "record_path", where);

	const json &e = j["entry"];
	const std::string ew = where + " entry";

	if (!e.is_object())
		throw Failure(kExitCannotVerify, ew + ": not an object");
	/* every field of the entry, by its name */
#define SA_FIELD_KEY_(name, ...) #name,
	expect_keys(e, {SA_ENTRY_FIELDS(SA_FIELD_KEY_, SA_FIELD_KEY_, SA_FIELD_KEY_)}, ew);
#undef SA_FIELD_KEY_
	p.entry.format = static_cast<uint16_t>(get_u64(e, "format", ew) & 0xffff);
	if (get_u64(e, "format", ew) != SA_FORMAT_VERSION && get_u64(e, "format", ew) != SA_FORMAT_PROTECTED)
		throw Failure(kExitCannotVerify, ew + ": unknown entry format " + get_str(e, "format", ew));
	p.entry.chain = get_i64(e, "chain", ew, 0, UINT32_MAX);
	p.entry.seq = get_i64(e, "seq", ew, 1, INT64_MAX);
	p.entry.txid = get_u64(e, "txid", ew);
	p.entry.event_time = get_i64(e, "event_time", ew, INT64_MIN, INT64_MAX);
	for (size_t i = 0; i < SA_TEXT_NFIELDS; i++)
		p.entry.texts.push_back(get_opt_str(e, kEntryTextNames[i], ew));
	p.entry.backend_pid = static_cast<int32_t>(get_i64(e, "backend_pid", ew, INT32_MIN, INT32_MAX));
	p.entry.prev_hash = get_digest(e, "prev_hash", ew);
	return p;
}

Digest
proof_entry_hash(const ProofEntry &pe)
{
	sa_entry	e;
	sa_bytes	t[SA_TEXT_NFIELDS];

	for (size_t i = 0; i < SA_TEXT_NFIELDS; i++)
	{
		const auto &v = pe.texts.at(i);

		t[i] = v ? sa_bytes{v->data(), v->size(), 0} : sa_bytes{nullptr, 0, 1};
	}
	e.format = pe.format;
	e.chain = static_cast<uint32_t>(pe.chain);
	e.seq = static_cast<uint64_t>(pe.seq);
	e.txid = pe.txid;
	e.event_time = pe.event_time;
	for (size_t i = 0; i < SA_TEXT_NFIELDS; i++)
		e.*kEntryTextFields[i] = t[i];
	e.backend_pid = pe.backend_pid;
	std::memcpy(e.prev_hash, pe.prev_hash.data(), SA_DIGEST_LEN);

	sa_hasher  *h = sa_hasher_create();
	Digest		out;

	if (h == nullptr)
		throw Failure(kExitCannotVerify, "SHA-256 unavailable");
	int			rc = sa_entry_hash(h, &e, out.data());

	sa_hasher_destroy(h);
	if (rc != SA_OK)
		throw Failure(kExitCannotVerify, std::string("cannot hash the entry: ") + sa_strerror(rc));
	return out;
}

}								/* namespace sa_cli */
