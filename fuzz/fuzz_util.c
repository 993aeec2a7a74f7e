/*
 * fuzz_util.c: temp dirs, files and the seeded database of the fuzz
 * targets (fuzz.h).
 */
#define _GNU_SOURCE
#include <fcntl.h>
#include <ftw.h>
#include <sys/stat.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "fuzz.h"

static char *proc_dir;          /* this process's temp dir */
static char *dirs[16];          /* fz_tmpdir()'s, kept until exit */
static unsigned n_dirs;
static FILE *saved_stderr;      /* while fz_stderr_off() */
static FILE *dev_null;

/* Abort with a message: the harness itself failed. */
static void
die(const char *what, const char *detail)
{
	fprintf(stderr, "fuzz harness: %s: %s\n", what, detail);
	abort();
}

/* nftw callback: remove one entry. */
static int
rm_entry(const char *path, const struct stat *sb, int flag, struct FTW *ftw)
{
	(void) sb;
	(void) flag;
	(void) ftw;
	return remove(path);
}

/* atexit: remove the process temp dir (databases are closed by then or
 * abandoned: the files go either way). */
static void
rm_proc_dir(void)
{
	if (proc_dir != NULL)
		nftw(proc_dir, rm_entry, 16, FTW_DEPTH | FTW_PHYS);
}

void
fz_init(void)
{
	const char *base = getenv("TMPDIR");

	if (proc_dir != NULL)
		return;
	setenv("VECDB_LOG", "error", 0);
	if (base == NULL || *base == '\0')
		base = "/tmp";
	if (asprintf(&proc_dir, "%s/vecdb-fuzz-XXXXXX", base) < 0 ||
	    mkdtemp(proc_dir) == NULL)
		die("cannot make a temp dir under", base);
	atexit(rm_proc_dir);
}

const char *
fz_tmpdir(const char *tag)
{
	char *p;

	fz_init();
	if (n_dirs == sizeof(dirs) / sizeof(dirs[0]))
		die("too many temp dirs", tag);
	if (asprintf(&p, "%s/%s-%u", proc_dir, tag, n_dirs) < 0 ||
	    mkdir(p, 0700) != 0)
		die("cannot make a temp dir", tag);
	return dirs[n_dirs++] = p;
}

void
fz_file_write(const char *path, const uint8_t *d, size_t n)
{
	int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0600);
	size_t off = 0;

	if (fd < 0)
		die("cannot create", path);
	while (off < n) {
		ssize_t k = write(fd, d + off, n - off);
		if (k <= 0)
			die("cannot write", path);
		off += (size_t) k;
	}
	close(fd);
}

vecdb *
fz_db_open(const char *dir)
{
	vecdb_options o;
	vecdb *db;

	vecdb_options_init(&o);
	o.durability = VECDB_BUFFERED;
	o.map_size = 1ULL << 30;
	o.full_scan_threshold = 2;
	o.wal_retain = 1000;
	if (vecdb_open(dir, &o, &db) != VECDB_OK)
		die("cannot open a database", vecdb_errmsg());
	return db;
}

/* ===== The seeded collections ===== */

/* Abort unless rv is VECDB_OK. */
static void
ok(int rv, const char *what)
{
	if (rv != VECDB_OK)
		die(what, vecdb_errmsg());
}

/* docs/API.md's "places", with its two payload indexes. */
static void
seed_places(vecdb *db)
{
	static const float v[4][2] = { { 0, 0 }, { 3, 4 }, { 6, 8 }, { 0, 1 } };
	static const char *const pay[4] = {
		"{\"kind\": \"cafe\", \"rating\": 4}",
		"{\"kind\": \"bar\", \"rating\": 5}",
		"{\"kind\": \"cafe\", \"rating\": 2}",
		"{\"kind\": \"shop\", \"rating\": 3}",
	};
	vecdb_collection_config c;
	vecdb_point p[4];

	vecdb_collection_config_init(&c, FZ_PLACES, 2, VECDB_EUCLIDEAN);
	ok(vecdb_collection_create(db, &c), "create " FZ_PLACES);
	for (int i = 0; i < 4; i++)
		p[i] = (vecdb_point) { vecdb_id_num((uint64_t) i + 1), v[i], 2,
			pay[i] };
	ok(vecdb_upsert(db, FZ_PLACES, p, 4), "points of " FZ_PLACES);
	ok(vecdb_payload_index_create(db, FZ_PLACES, "kind",
	    VECDB_FIELD_KEYWORD), "index kind");
	ok(vecdb_payload_index_create(db, FZ_PLACES, "rating",
	    VECDB_FIELD_INTEGER), "index rating");
}

/* float16 with UUID ids, nested and array payloads, every other schema. */
static void
seed_docs(vecdb *db)
{
	static const char *const ids[3] = {
		"5c56c793-69f3-4fbf-87e6-c4bf54c28c26",
		"0b6a2e1e-3c8e-4f0a-9d4b-9f1f7f1c2a11",
		"f0e1d2c3-b4a5-4697-8879-6a5b4c3d2e1f",
	};
	static const float v[3][3] = { { 1, 0, 0 }, { 0, 1, 0 }, { 0.5f,
		0.5f, -1 } };
	static const char *const pay[3] = {
		("{\"diet\": [{\"food\": \"meat\", \"likes\": false}, "
		"{\"food\": \"leaves\", \"likes\": true}], \"tags\": [\"a\", "
		"\"b\"], \"loc\": {\"lat\": 52.52, \"lon\": 13.405}, "
		"\"n\": 3.5, \"flag\": true}"),
		("{\"tags\": [], \"loc\": {\"lat\": -33.87, \"lon\": 151.21}, "
		"\"n\": -1, \"flag\": false, \"a\": {\"b\": {\"c\": 7}}}"),
		"{\"tags\": [\"b\", 3, null, {\"x\": 1}], \"n\": 9007199254740993}",
	};
	static const struct {
		const char *field;
		vecdb_field_schema s;
	} ix[] = { { "tags", VECDB_FIELD_KEYWORD }, { "n", VECDB_FIELD_FLOAT },
		{ "flag", VECDB_FIELD_BOOL }, { "loc", VECDB_FIELD_GEO },
		{ "a.b.c", VECDB_FIELD_INTEGER } };
	vecdb_collection_config c;
	vecdb_point p[3];

	vecdb_collection_config_init(&c, FZ_DOCS, 3, VECDB_COSINE);
	c.vector_type = VECDB_FLOAT16;
	ok(vecdb_collection_create(db, &c), "create " FZ_DOCS);
	for (int i = 0; i < 3; i++) {
		memset(&p[i], 0, sizeof(p[i]));
		ok(vecdb_id_parse(ids[i], &p[i].id), "uuid");
		p[i].vector = v[i];
		p[i].dim = 3;
		p[i].payload = pay[i];
	}
	ok(vecdb_upsert(db, FZ_DOCS, p, 3), "points of " FZ_DOCS);
	for (size_t i = 0; i < sizeof(ix) / sizeof(ix[0]); i++)
		ok(vecdb_payload_index_create(db, FZ_DOCS, ix[i].field,
		    ix[i].s), "index of " FZ_DOCS);
}

/* uint8 vectors under scalar quantization, dot product. */
static void
seed_bytes(vecdb *db)
{
	static const float v[3][4] = { { 0, 1, 2, 3 }, { 255, 0, 255, 0 },
		{ 7, 7, 7, 7 } };
	vecdb_collection_config c;
	vecdb_point p[3];

	vecdb_collection_config_init(&c, FZ_BYTES, 4, VECDB_DOT);
	c.vector_type = VECDB_UINT8;
	c.quantization.type = VECDB_QUANT_SCALAR;
	c.quantization.quantile = 0.99f;
	ok(vecdb_collection_create(db, &c), "create " FZ_BYTES);
	for (int i = 0; i < 3; i++)
		p[i] = (vecdb_point) { vecdb_id_num((uint64_t) i * 1000 + 7),
			v[i], 4, i == 1 ? NULL : "{\"k\": \"v\"}" };
	ok(vecdb_upsert(db, FZ_BYTES, p, 3), "points of " FZ_BYTES);
}

/* Sparse vectors and a named dense one ("image", 3-d euclidean) beside
 * the default vector: a point with all of them, one with tags only, one
 * with the image only. */
static void
seed_hybrid(vecdb *db)
{
	static const float v[3][2] = { { 1, 0 }, { 0.6f, 0.8f }, { 0, 1 } };
	static const uint32_t ti[] = { 1, 7, 42 }, gi[] = { 3 };
	static const float tv[] = { 0.5f, 1.25f, 2 }, gv[] = { 1 };
	const vecdb_sparse_vector sv[2] = { { "text", ti, tv, 3, 0 },
		{ "tags", gi, gv, 1, 0 } };
	static const float img[2][3] = { { 1, 2, 3 }, { 0, -1, 0.5f } };
	const vecdb_named_vector nv[2] = { { "image", img[0], 3, 0 },
		{ "image", img[1], 3, 0 } };
	const vecdb_point_sparse ps[3] = { { sv, 2, nv, 1 },
		{ sv + 1, 1, NULL, 0 }, { NULL, 0, nv + 1, 1 } };
	vecdb_collection_config c;
	vecdb_point p[3];

	vecdb_collection_config_init(&c, FZ_HYBRID, 2, VECDB_COSINE);
	c.n_sparse = 2;
	snprintf(c.sparse[0].name, sizeof(c.sparse[0].name), "text");
	c.sparse[0].modifier = VECDB_SPARSE_IDF;
	snprintf(c.sparse[1].name, sizeof(c.sparse[1].name), "tags");
	c.n_vectors = 1;
	snprintf(c.vectors[0].name, sizeof(c.vectors[0].name), "image");
	c.vectors[0].dimension = 3;
	c.vectors[0].metric = VECDB_EUCLIDEAN;
	ok(vecdb_collection_create(db, &c), "create " FZ_HYBRID);
	for (int i = 0; i < 3; i++)
		p[i] = (vecdb_point) { vecdb_id_num((uint64_t) i + 1), v[i], 2,
			"{\"n\": 1}" };
	ok(vecdb_write(db, FZ_HYBRID, VECDB_WRITE_UPSERT, p, ps, 3, 0),
	    "points of " FZ_HYBRID);
}

void
fz_db_seed(vecdb *db)
{
	seed_places(db);
	seed_docs(db);
	seed_bytes(db);
	seed_hybrid(db);
	ok(vecdb_index_sync(db, 30000), "index sync");
}

/* ===== Small things ===== */

void
fz_stderr_off(void)
{
	if (dev_null == NULL && (dev_null = fopen("/dev/null", "we")) == NULL)
		die("cannot open", "/dev/null");
	saved_stderr = stderr;
	stderr = dev_null;
}

void
fz_stderr_on(void)
{
	if (saved_stderr != NULL)
		stderr = saved_stderr;
	saved_stderr = NULL;
}

char *
fz_strndup(const uint8_t *d, size_t n)
{
	char *s = malloc(n + 1);

	if (s == NULL)
		die("out of memory", "copy of the input");
	memcpy(s, d, n);
	s[n] = '\0';
	return s;
}
