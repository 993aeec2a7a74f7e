/*
 * ctl_import.c: `points import COLLECTION FILE.jsonl [--batch N]`. The
 * file is streamed line by line (one point a line, as the REST upsert
 * takes it: {id?, vector|data, payload|metadata?}) into upsert batches.
 * Each line is checked before its batch is sent, against the collection's
 * dimension too, so that a bad line is named by its number and nothing of
 * its batch reaches the server. A checked line is sent as it was written,
 * not re-encoded: numbers keep their exact text, and it halves the
 * client's work (parsing a 128-d line costs about as much as printing it).
 * Then it waits, showing the indexer's progress, until what it imported
 * is in the collection's index (pending_count 0), unless --no-wait.
 */
#include <errno.h>
#include <getopt.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include "api_json_text.h"
#include "ctl.h"

#define IMPORT_USAGE \
	"usage: vecdbctl points import COLLECTION FILE.jsonl|- [--batch N] " \
	"[--no-wait]\n"
#define PROGRESS_INTERVAL_S 1.0   /* between plain progress lines */
#define BAR_WIDTH 30
#define WAIT_POLL_US 200000       /* between looks at pending_count */

struct import {
	struct ctl *c;
	const char *coll;
	const char *file;         /* "-": stdin */
	const char *name;         /* the file as messages name it */
	FILE *in;
	long batch;               /* points per request */
	uint32_t dim;             /* the collection's dimension */
	uint64_t total;           /* non-blank lines; 0: unknown */
	uint64_t done;            /* points the server acknowledged */
	uint64_t line;            /* number of the line being read */
	uint64_t first;           /* line of the batch's first point */
	char *body;               /* the batch: {"vectors":[line,line... */
	size_t len, cap;          /* of body */
	size_t n;                 /* points in the batch */
	double t0, shown;         /* start, last progress line */
	double searchable;        /* seconds until indexed; < 0: not waited */
	int tty;                  /* stderr is a terminal: redraw one line */
	int no_wait;              /* --no-wait */
};

/* Seconds on the monotonic clock. */
static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (double) ts.tv_sec + (double) ts.tv_nsec / 1e9;
}

/* Points per second so far. */
static double
rate(const struct import *im)
{
	double dt = now_s() - im->t0;

	return dt > 0 ? (double) im->done / dt : 0;
}

/*
 * Count the non-blank lines of a regular file, for a progress total: a
 * sequential read costs far less than sending the points. Pipes and
 * stdin are not counted (they cannot be read twice).
 */
static uint64_t
count_lines(const char *path)
{
	char buf[65536];
	uint64_t n = 0;
	int content = 0;
	struct stat sb;
	size_t got;
	FILE *f;

	if (strcmp(path, "-") == 0 || stat(path, &sb) != 0 ||
	    !S_ISREG(sb.st_mode) || (f = fopen(path, "r")) == NULL)
		return 0;
	while ((got = fread(buf, 1, sizeof(buf), f)) > 0)
		for (size_t i = 0; i < got; i++) {
			if (buf[i] == '\n') {
				n += content;
				content = 0;
			} else if (buf[i] != ' ' && buf[i] != '\t' &&
			    buf[i] != '\r') {
				content = 1;
			}
		}
	fclose(f);
	return n + (uint64_t) content;
}

/* Show progress: a redrawn bar on a terminal, else a line now and then. */
static void
progress(struct import *im, int last)
{
	double now = now_s();

	if (im->tty) {
		char bar[BAR_WIDTH + 1];
		size_t fill = im->total ? (size_t) (BAR_WIDTH * im->done /
		    im->total) : 0;
		memset(bar, '#', fill);
		memset(bar + fill, im->total ? '.' : ' ', BAR_WIDTH - fill);
		bar[BAR_WIDTH] = '\0';
		if (im->total)
			fprintf(stderr, "\r[%s] %llu/%llu points  %.0f points/s ",
			    bar, (unsigned long long) im->done,
			    (unsigned long long) im->total, rate(im));
		else
			fprintf(stderr, "\r%llu points  %.0f points/s ",
			    (unsigned long long) im->done, rate(im));
		if (last)
			fputc('\n', stderr);
		return;
	}
	if (!last && im->shown > 0 && now - im->shown < PROGRESS_INTERVAL_S)
		return;
	im->shown = now;
	if (im->total)
		fprintf(stderr, "imported %llu/%llu points (%.0f%%, %.0f "
		    "points/s)\n", (unsigned long long) im->done,
		    (unsigned long long) im->total, 100.0 * (double) im->done /
		    (double) im->total, rate(im));
	else
		fprintf(stderr, "imported %llu points (%.0f points/s)\n",
		    (unsigned long long) im->done, rate(im));
}

#define BATCH_HEAD "{\"vectors\":["

/* Append len bytes to the batch body. */
static int
body_add(struct import *im, const char *s, size_t len)
{
	if (im->len + len + 1 > im->cap) {
		size_t cap = (im->cap ? im->cap * 2 : 65536) + len;
		char *p = realloc(im->body, cap);
		if (p == NULL) {
			ctl_errorf("out of memory");
			return CTL_FAIL;
		}
		im->body = p;
		im->cap = cap;
	}
	memcpy(im->body + im->len, s, len);
	im->len += len;
	im->body[im->len] = '\0';
	return CTL_OK;
}

/* Empty the batch. */
static int
batch_reset(struct import *im)
{
	im->len = 0;
	im->n = 0;
	return body_add(im, BATCH_HEAD, strlen(BATCH_HEAD));
}

/* Send the batch; on failure say which lines it held. */
static int
batch_send(struct import *im)
{
	char path[128];
	json_t *data;
	int rv;

	if (im->n == 0)
		return CTL_OK;
	snprintf(path, sizeof(path), "collections/%s/vectors/upsert",
	    im->coll);
	if ((rv = body_add(im, "]}", 2)) != CTL_OK)
		return rv;
	rv = ctl_call_text(im->c, "POST", path, im->body, im->len, &data);
	if (rv != CTL_OK) {
		ctl_errorf("the batch of lines %llu-%llu was not imported",
		    (unsigned long long) im->first,
		    (unsigned long long) im->line);
		return rv;
	}
	im->done += (uint64_t) json_integer_value(json_object_get(data,
	    "upserted_count"));
	json_decref(data);
	progress(im, 0);
	return batch_reset(im);
}

/* Check a parsed line; NULL if it is a point, else why not. */
static const char *
point_check(const struct import *im, const json_t *p, char *why, size_t len)
{
	const json_t *v = json_object_get(p, "vector"), *id, *pl;

	if (!json_is_object(p))
		return "not a JSON object";
	if (v == NULL)
		v = json_object_get(p, "data");
	if (!json_is_array(v))
		return "no \"vector\" (or \"data\") array";
	if (json_array_size(v) != im->dim) {
		snprintf(why, len, "the vector has %zu dimensions, collection "
		    "'%s' expects %u", json_array_size(v), im->coll, im->dim);
		return why;
	}
	for (size_t i = 0; i < json_array_size(v); i++)
		if (!json_is_number(json_array_get(v, i))) {
			snprintf(why, len, "vector[%zu] is not a number", i);
			return why;
		}
	id = json_object_get(p, "id");
	if (id != NULL && !json_is_null(id) && !json_is_string(id) &&
	    !(json_is_integer(id) && json_integer_value(id) >= 0))
		return "\"id\" must be an unsigned integer or a UUID string";
	pl = json_object_get(p, "payload");
	if (pl == NULL)
		pl = json_object_get(p, "metadata");
	if (pl != NULL && !json_is_null(pl) && !json_is_object(pl))
		return "the payload (\"payload\" or \"metadata\") must be an "
		    "object";
	return NULL;
}

/* Take one line of len bytes: skip blanks, else check it and add it to
 * the batch. */
static int
line_take(struct import *im, const char *text, size_t len)
{
	const char *s = text + strspn(text, " \t\r\n");
	char why[256];
	const char *bad;
	json_error_t je;
	json_t *p;
	int rv;

	len -= (size_t) (s - text);
	while (len > 0 && strchr(" \t\r\n", s[len - 1]) != NULL)
		len--;
	if (len == 0)
		return CTL_OK;
	if ((p = api_json_loadb(s, len, 0, &je)) == NULL) {
		ctl_errorf("%s:%llu: malformed line: %s", im->name,
		    (unsigned long long) im->line, je.text);
		return CTL_FAIL;
	}
	if ((bad = point_check(im, p, why, sizeof(why))) != NULL) {
		ctl_errorf("%s:%llu: malformed line: %s", im->name,
		    (unsigned long long) im->line, bad);
		json_decref(p);
		return CTL_FAIL;
	}
	json_decref(p);
	if (im->n == 0)
		im->first = im->line;
	if ((im->n > 0 && (rv = body_add(im, ",", 1)) != CTL_OK) ||
	    (rv = body_add(im, s, len)) != CTL_OK)
		return rv;
	if ((long) ++im->n >= im->batch)
		return batch_send(im);
	return CTL_OK;
}

/* Stream the file into batches. */
static int
import_run(struct import *im)
{
	char *text = NULL;
	size_t cap = 0;
	ssize_t got;
	int rv = CTL_OK;

	while (rv == CTL_OK && (got = getline(&text, &cap, im->in)) != -1) {
		im->line++;
		rv = line_take(im, text, (size_t) got);
	}
	free(text);
	if (rv == CTL_OK && ferror(im->in)) {
		ctl_errorf("%s: read error after line %llu", im->name,
		    (unsigned long long) im->line);
		rv = CTL_FAIL;
	}
	if (rv == CTL_OK)
		rv = batch_send(im);
	return rv;
}

/* The collection's dimension (and that it exists). */
static int
dim_get(struct import *im)
{
	char path[128];
	json_t *data;
	int rv;

	snprintf(path, sizeof(path), "collections/%s", im->coll);
	if ((rv = ctl_call(im->c, "GET", path, NULL, &data)) != CTL_OK)
		return rv;
	im->dim = (uint32_t) json_integer_value(json_object_get(
	    json_object_get(data, "config"), "dimension"));
	json_decref(data);
	return CTL_OK;
}

/* The collection's pending_count and indexing_rate now. */
static int
pending_get(struct import *im, uint64_t *pending, double *rate_now)
{
	char path[128];
	json_t *data, *st;
	int rv;

	snprintf(path, sizeof(path), "collections/%s", im->coll);
	if ((rv = ctl_call(im->c, "GET", path, NULL, &data)) != CTL_OK)
		return rv;
	st = json_object_get(data, "stats");
	*pending = (uint64_t) json_integer_value(json_object_get(st,
	    "pending_count"));
	*rate_now = json_number_value(json_object_get(st, "indexing_rate"));
	json_decref(data);
	return CTL_OK;
}

/*
 * Wait until the indexer has caught up with the import: a point is
 * searchable at once, but exactly (slowly) until then. Shows how much
 * is left the way the import showed its progress.
 */
static int
index_wait(struct import *im)
{
	uint64_t pending, first = 0;
	double r, shown = 0;
	int rv;

	for (;;) {
		if ((rv = pending_get(im, &pending, &r)) != CTL_OK)
			return rv;
		if (first == 0)
			first = pending;
		if (pending == 0)
			break;
		double now = now_s();
		if (im->tty)
			fprintf(stderr, "\rindexing: %llu points pending  %.0f "
			    "points/s ", (unsigned long long) pending, r);
		else if (now - shown >= PROGRESS_INTERVAL_S) {
			fprintf(stderr, "indexing: %llu points pending (%.0f "
			    "points/s)\n", (unsigned long long) pending, r);
			shown = now;
		}
		usleep(WAIT_POLL_US);
	}
	if (im->tty && first > 0)
		fprintf(stderr, "\rindexing: done%*s\n", 30, "");
	im->searchable = now_s() - im->t0;
	return CTL_OK;
}

/* Flags and positionals of points import. */
static int
import_parse(int argc, char **argv, struct import *im)
{
	static const struct option opts[] = {
		{ "batch", required_argument, NULL, 'b' },
		{ "no-wait", no_argument, NULL, 'n' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int opt;

	optind = 0;
	opterr = 0;
	while ((opt = getopt_long(argc, argv, "h", opts, NULL)) != -1)
		switch (opt) {
		case 'b':
			if (ctl_parse_long(IMPORT_USAGE, "--batch", optarg, 1,
			    CTL_BATCH_MAX, &im->batch) != CTL_OK)
				return CTL_USAGE;
			break;
		case 'n': im->no_wait = 1; break;
		case 'h': fputs(IMPORT_USAGE, stdout); return -1;
		default: return ctl_usage_error(IMPORT_USAGE, "bad option "
		    "'%s'", argv[optind - 1]);
		}
	if (argc - optind != 2)
		return ctl_usage_error(IMPORT_USAGE, "import takes COLLECTION "
		    "and FILE");
	im->coll = argv[optind];
	im->file = argv[optind + 1];
	im->name = strcmp(im->file, "-") == 0 ? "stdin" : im->file;
	if (im->coll[strspn(im->coll, "abcdefghijklmnopqrstuvwxyz"
	    "ABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_-")] != '\0' ||
	    strlen(im->coll) > 64)
		return ctl_usage_error(IMPORT_USAGE, "'%s' is not a collection "
		    "name", im->coll);
	return CTL_OK;
}

/* The closing line: what got in, and how fast. */
static void
summary(struct import *im, int rv, double dt)
{
	if (rv != CTL_OK) {
		ctl_errorf("imported %llu points into '%s' before the error",
		    (unsigned long long) im->done, im->coll);
		return;
	}
	if (im->c->json) {
		json_t *j = json_pack("{s:s, s:I, s:f}", "collection", im->coll,
		    "imported", (json_int_t) im->done, "seconds", dt);
		if (im->searchable >= 0)
			json_object_set_new(j, "searchable_seconds",
			    json_real(im->searchable));
		ctl_print_json(j);
		json_decref(j);
		return;
	}
	printf("imported %llu points into '%s' in %.1f s (%.0f points/s)",
	    (unsigned long long) im->done, im->coll, dt,
	    dt > 0 ? (double) im->done / dt : 0);
	if (im->searchable >= 0)
		printf("; all indexed after %.1f s", im->searchable);
	putchar('\n');
}

/* points import. */
static int
points_import(struct ctl *c, int argc, char **argv)
{
	struct import im = { .c = c, .batch = CTL_BATCH_DEFAULT,
		.searchable = -1 };
	int rv;

	if ((rv = import_parse(argc, argv, &im)) != CTL_OK)
		return rv < 0 ? CTL_OK : rv;
	if ((rv = dim_get(&im)) != CTL_OK)
		return rv;
	im.in = strcmp(im.file, "-") == 0 ? stdin : fopen(im.file, "r");
	if (im.in == NULL) {
		ctl_errorf("cannot open %s: %s", im.file, strerror(errno));
		return CTL_FAIL;
	}
	if ((rv = batch_reset(&im)) == CTL_OK) {
		im.total = count_lines(im.file);
		im.tty = isatty(STDERR_FILENO);
		im.t0 = now_s();
		double dt;
		rv = import_run(&im);
		dt = now_s() - im.t0;
		if (im.tty && im.done)
			fputc('\n', stderr);
		else if (!im.tty && rv == CTL_OK && im.done)
			progress(&im, 1);
		if (rv == CTL_OK && !im.no_wait)
			rv = index_wait(&im);
		summary(&im, rv, dt);
	}
	free(im.body);
	if (im.in != stdin)
		fclose(im.in);
	return rv;
}

int
ctl_points(struct ctl *c, int argc, char **argv)
{
	if (argc < 2)
		return ctl_usage_error(IMPORT_USAGE, "points needs a "
		    "subcommand");
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		fputs(IMPORT_USAGE, stdout);
		return CTL_OK;
	}
	if (strcmp(argv[1], "import") != 0)
		return ctl_usage_error(IMPORT_USAGE, "unknown points "
		    "subcommand '%s'", argv[1]);
	return points_import(c, argc - 1, argv + 1);
}
