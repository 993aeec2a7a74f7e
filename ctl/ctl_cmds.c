/*
 * ctl_cmds.c: the command families cluster, collections, snapshot and
 * search. Each command is one or a few REST calls; --json prints the
 * server's data unchanged, otherwise a table.
 */
#include <getopt.h>
#include <math.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "ctl.h"

/* A subcommand: its name, usage and function (argv[0] is its name). */
struct sub {
	const char *name;
	const char *usage;
	int (*fn)(struct ctl *c, const struct sub *s, int argc, char **argv);
};

/* getopt over a subcommand's words; the positionals are left in
 * argv[optind..]. Returns the option, -1 at the end, 'h' for --help. */
static int
opt_next(const struct sub *s, int argc, char **argv,
    const struct option *opts)
{
	static const struct option none[] = { { "help", no_argument, NULL,
		'h' }, { NULL, 0, NULL, 0 } };
	int opt;

	opterr = 0;
	if ((opt = getopt_long(argc, argv, "h", opts ? opts : none, NULL)) ==
	    '?')
		ctl_usage_error(s->usage, "bad option '%s'", argv[optind - 1]);
	return opt;
}

/* Parse a subcommand that takes no flags and exactly npos positionals. */
static int
plain_args(const struct sub *s, int argc, char **argv, int npos)
{
	int opt;

	optind = 0;
	while ((opt = opt_next(s, argc, argv, NULL)) != -1) {
		if (opt == 'h') {
			fputs(s->usage, stdout);
			return -1;
		}
		return CTL_USAGE;
	}
	if (argc - optind != npos)
		return ctl_usage_error(s->usage, "%s takes %d argument%s, "
		    "got %d", s->name, npos, npos == 1 ? "" : "s",
		    argc - optind);
	return CTL_OK;
}

/* Run the subcommand named in argv[1] of a family (argv[0]). */
static int
family(struct ctl *c, const char *usage, const struct sub *subs, size_t n,
    int argc, char **argv)
{
	if (argc < 2)
		return ctl_usage_error(usage, "%s needs a subcommand", argv[0]);
	if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0) {
		fputs(usage, stdout);
		return CTL_OK;
	}
	for (size_t i = 0; i < n; i++)
		if (strcmp(argv[1], subs[i].name) == 0)
			return subs[i].fn(c, &subs[i], argc - 1, argv + 1);
	return ctl_usage_error(usage, "unknown %s subcommand '%s'", argv[0],
	    argv[1]);
}

/* "collections/<escaped name>[/rest]" (caller frees). */
static char *
coll_path(struct ctl *c, const char *coll, const char *rest)
{
	char *e = ctl_escape(c, coll), *p;
	size_t n;

	if (e == NULL)
		return NULL;
	n = strlen(e) + (rest ? strlen(rest) : 0) + 16;
	if ((p = malloc(n)) != NULL)
		snprintf(p, n, "collections/%s%s%s", e, rest ? "/" : "",
		    rest ? rest : "");
	free(e);
	return p;
}

/* One call on collections/:coll[/rest]; *data as ctl_call gives it. */
static int
coll_call(struct ctl *c, const char *method, const char *coll,
    const char *rest, const json_t *body, json_t **data)
{
	char *path = coll_path(c, coll, rest);
	int rv;

	if (path == NULL) {
		ctl_errorf("out of memory");
		return CTL_FAIL;
	}
	rv = ctl_call(c, method, path, body, data);
	free(path);
	return rv;
}

/* A number field as text ("-" when absent). */
static char *
num_text(const json_t *o, const char *key)
{
	return ctl_json_text(json_object_get(o, key));
}

/* ===== cluster ===== */

/* "a=10,b=3" for a member's collections. */
static char *
colls_text(const json_t *colls)
{
	size_t i, len = 0, cap = 1;
	json_t *x;
	char *s;

	json_array_foreach(colls, i, x)
		cap += strlen(json_string_value(json_object_get(x, "name")) ?:
		    "") + 24;
	if ((s = malloc(cap)) == NULL) {
		ctl_errorf("out of memory");
		exit(CTL_FAIL);
	}
	s[0] = '\0';
	json_array_foreach(colls, i, x)
		len += (size_t) snprintf(s + len, cap - len, "%s%s=%lld",
		    i ? "," : "", json_string_value(json_object_get(x,
		    "name")) ?: "?", (long long) json_integer_value(
		    json_object_get(x, "vectors")));
	return s;
}

/* The last seq of the shard's reachable primary (-1: none answered). */
static json_int_t
primary_seq(const json_t *members)
{
	json_int_t seq = -1;
	json_t *m;
	size_t i;

	json_array_foreach(members, i, m)
		if (json_is_true(json_object_get(m, "reachable")) &&
		    strcmp(json_string_value(json_object_get(m, "role")) ?: "",
		    "primary") == 0 && json_integer_value(json_object_get(m,
		    "last_seq")) > seq)
			seq = json_integer_value(json_object_get(m, "last_seq"));
	return seq;
}

/* A replica's lag in records behind its shard's primary, else "-". */
static char *
lag_text(const json_t *m, json_int_t pseq)
{
	json_t *seq = json_object_get(m, "last_seq");
	char *s;

	if (pseq < 0 || !json_is_integer(seq) || strcmp(json_string_value(
	    json_object_get(m, "role")) ?: "", "replica") != 0)
		return strdup("-");
	if ((s = malloc(24)) != NULL)
		snprintf(s, 24, "%lld", (long long) (pseq >
		    json_integer_value(seq) ? pseq - json_integer_value(seq) :
		    0));
	return s;
}

/* One table row per member of one shard. */
static void
shard_rows(struct ctl_table *t, const json_t *shard, size_t *up, size_t *all)
{
	json_t *m, *members = json_object_get(shard, "members");
	char *id = num_text(shard, "id");
	json_int_t pseq = primary_seq(members);
	size_t i;

	json_array_foreach(members, i, m) {
		int ok = json_is_true(json_object_get(m, "reachable"));
		char *seq = num_text(m, "last_seq"), *vec = num_text(m,
		    "vectors"), *cl = colls_text(json_object_get(m,
		    "collections")), *term = num_text(m, "term"),
		    *lag = lag_text(m, pseq);
		ctl_table_row(t, id, json_string_value(json_object_get(m,
		    "url")), json_string_value(json_object_get(m, "role")),
		    ok ? "yes" : "no", json_string_value(json_object_get(m,
		    "node_id")), term, seq, lag, vec, *cl ? cl : "-",
		    json_string_value(json_object_get(m, "error")));
		*up += ok;
		(*all)++;
		free(seq), free(vec), free(cl), free(term), free(lag);
	}
	free(id);
}

/* A router on etcd: the shard's leader key, one line. */
static void
leader_line(json_t *shard)
{
	json_t *l = json_object_get(shard, "leader");
	json_int_t id = json_integer_value(json_object_get(shard, "id"));

	if (l == NULL)
		return;  /* roles not from etcd */
	if (json_is_null(l)) {
		printf("shard %lld: no leader in etcd (an election is due)\n",
		    (long long) id);
		return;
	}
	printf("shard %lld: leader %s, term %lld, lease %llds left\n",
	    (long long) id, json_string_value(json_object_get(l, "node_id"))
	    ?: "?", (long long) json_integer_value(json_object_get(l,
	    "term")), (long long) json_integer_value(json_object_get(l,
	    "lease_ttl_s")));
}

/* cluster status: GET /cluster as one row per member. */
static int
cluster_status(struct ctl *c, const struct sub *s, int argc, char **argv)
{
	size_t i, up = 0, all = 0;
	struct ctl_table t;
	json_t *data, *shard;
	int rv;

	if ((rv = plain_args(s, argc, argv, 0)) != CTL_OK)
		return rv < 0 ? CTL_OK : rv;
	if ((rv = ctl_call(c, "GET", "cluster", NULL, &data)) != CTL_OK)
		return rv;
	if (c->json) {
		ctl_print_json(data);
		json_decref(data);
		return CTL_OK;
	}
	ctl_table_init(&t, 11, "SHARD", "URL", "ROLE", "REACHABLE", "NODE_ID",
	    "TERM", "LAST_SEQ", "LAG", "VECTORS", "COLLECTIONS", "ERROR");
	json_array_foreach(json_object_get(data, "shards"), i, shard)
		shard_rows(&t, shard, &up, &all);
	ctl_table_print(&t, stdout);
	printf("%s: %zu of %zu members reachable\n", json_string_value(
	    json_object_get(data, "role")) ?: "?", up, all);
	json_array_foreach(json_object_get(data, "shards"), i, shard)
		leader_line(shard);
	ctl_table_fini(&t);
	json_decref(data);
	return CTL_OK;
}

int
ctl_cluster(struct ctl *c, int argc, char **argv)
{
	static const struct sub subs[] = {
		{ "status", "usage: vecdbctl cluster status\n",
		    cluster_status },
	};

	return family(c, "usage: vecdbctl cluster status\n", subs, 1, argc,
	    argv);
}

/* ===== promote ===== */

#define PROMOTE_USAGE "usage: vecdbctl promote NODE\n" \
	"  NODE: a replica's --node-id or rpc url, as in cluster status\n"

/* promote NODE: POST /cluster/promote, then who follows the new primary. */
int
ctl_promote(struct ctl *c, int argc, char **argv)
{
	static const struct sub s = { "promote", PROMOTE_USAGE, NULL };
	json_t *body, *data, *m;
	size_t i;
	int rv;

	if ((rv = plain_args(&s, argc, argv, 1)) != CTL_OK)
		return rv < 0 ? CTL_OK : rv;
	if ((body = json_pack("{s:s}", "node", argv[optind])) == NULL)
		return CTL_FAIL;
	rv = ctl_call(c, "POST", "cluster/promote", body, &data);
	json_decref(body);
	if (rv != CTL_OK)
		return rv;
	if (c->json) {
		ctl_print_json(data);
		json_decref(data);
		return CTL_OK;
	}
	printf("shard %lld: %s is the primary now (term %lld, last seq %lld)\n",
	    (long long) json_integer_value(json_object_get(data, "shard")),
	    json_string_value(json_object_get(data, "url")),
	    (long long) json_integer_value(json_object_get(data, "term")),
	    (long long) json_integer_value(json_object_get(data, "last_seq")));
	json_array_foreach(json_object_get(data, "members"), i, m)
		printf("  %s: %s%s\n", json_string_value(json_object_get(m,
		    "url")), json_is_true(json_object_get(m, "followed")) ?
		    "follows it" : "not reached: ", json_is_true(
		    json_object_get(m, "followed")) ? "" : json_string_value(
		    json_object_get(m, "error")));
	json_decref(data);
	return CTL_OK;
}

/* ===== collections ===== */

/* The usage of create and update (the quantization flags are theirs). */
#define USAGE_INDENT "                                "
#define QUANT_FLAGS_USAGE \
	USAGE_INDENT "[--segments S] [--quantile Q] [--always-ram]\n"
#define CREATE_LINES \
	"vecdbctl collections create NAME --dim N " \
	"[--metric cosine|euclidean|dot|manhattan]\n" \
	USAGE_INDENT "[--m M] [--ef-construction E]\n" \
	USAGE_INDENT "[--quantization none|scalar|binary|product]\n" \
	QUANT_FLAGS_USAGE
#define UPDATE_LINES \
	"vecdbctl collections update NAME " \
	"--quantization none|scalar|binary|product\n" QUANT_FLAGS_USAGE
#define CREATE_USAGE "usage: " CREATE_LINES
#define UPDATE_USAGE "usage: " UPDATE_LINES
#define COLL_USAGE \
	"usage: vecdbctl collections list\n" \
	"       " CREATE_LINES \
	"       " UPDATE_LINES \
	"       vecdbctl collections info NAME\n" \
	"       vecdbctl collections delete NAME\n" \
	"       vecdbctl collections compact NAME\n"

/* collections list: the names, each with its dimension, metric, count. */
static int
coll_list(struct ctl *c, const struct sub *s, int argc, char **argv)
{
	json_t *names, *name, *info;
	struct ctl_table t;
	size_t i;
	int rv;

	if ((rv = plain_args(s, argc, argv, 0)) != CTL_OK)
		return rv < 0 ? CTL_OK : rv;
	if ((rv = ctl_call(c, "GET", "collections", NULL, &names)) != CTL_OK)
		return rv;
	if (c->json) {
		ctl_print_json(names);
		json_decref(names);
		return CTL_OK;
	}
	ctl_table_init(&t, 4, "NAME", "DIMENSION", "METRIC", "VECTORS");
	json_array_foreach(names, i, name) {
		json_t *cfg, *st;
		char *dim, *cnt;
		if ((rv = coll_call(c, "GET", json_string_value(name), NULL,
		    NULL, &info)) != CTL_OK)
			break;
		cfg = json_object_get(info, "config");
		st = json_object_get(info, "stats");
		dim = num_text(cfg, "dimension");
		cnt = num_text(st, "vector_count");
		ctl_table_row(&t, json_string_value(name), dim,
		    json_string_value(json_object_get(cfg, "distance_metric")),
		    cnt);
		free(dim), free(cnt);
		json_decref(info);
	}
	if (rv == CTL_OK)
		ctl_table_print(&t, stdout);
	ctl_table_fini(&t);
	json_decref(names);
	return rv;
}

/* The metric names vecdbctl takes, as the server spells them. */
static const char *
metric_name(const char *m)
{
	static const char *const ok[][2] = { { "cosine", "cosine" },
		{ "euclidean", "euclidean" }, { "dot", "dot_product" },
		{ "dot_product", "dot_product" }, { "manhattan", "manhattan" } };

	for (size_t i = 0; i < sizeof(ok) / sizeof(ok[0]); i++)
		if (strcmp(m, ok[i][0]) == 0)
			return ok[i][1];
	return NULL;
}

/* The quantization flags of collections create and update. */
struct quant_args {
	const char *type;         /* --quantization; NULL: not given */
	long segments;            /* --segments; 0: not given */
	double quantile;          /* --quantile; 0: not given */
	int always_ram;           /* --always-ram */
};

#define QUANT_OPTS \
	{ "quantization", required_argument, NULL, 'q' }, \
	{ "segments", required_argument, NULL, 's' }, \
	{ "quantile", required_argument, NULL, 'Q' }, \
	{ "always-ram", no_argument, NULL, 'A' }

/* One quantization flag into a: CTL_OK, CTL_USAGE, or 1 when opt is
 * not one of them. */
static int
quant_opt(const struct sub *s, int opt, const char *arg, struct quant_args *a)
{
	static const char *const types[] = { "none", "scalar", "binary",
		"product" };
	char *end;

	switch (opt) {
	case 'q':
		for (size_t i = 0; i < sizeof(types) / sizeof(types[0]); i++)
			if (strcmp(arg, types[i]) == 0) {
				a->type = types[i];
				return CTL_OK;
			}
		return ctl_usage_error(s->usage, "unknown quantization '%s' "
		    "(none, scalar, binary or product)", arg);
	case 's':
		return ctl_parse_long(s->usage, "--segments", arg, 1, 65536,
		    &a->segments);
	case 'Q':
		a->quantile = strtod(arg, &end);
		if (end == arg || *end != '\0' || !(a->quantile > 0 &&
		    a->quantile <= 1))
			return ctl_usage_error(s->usage, "--quantile '%s' is "
			    "not a number in (0, 1]", arg);
		return CTL_OK;
	case 'A':
		a->always_ram = 1;
		return CTL_OK;
	default:
		return 1;
	}
}

/*
 * The request's "quantization" from the flags: *out a new object, or
 * NULL without --quantization. The flags that only make sense with
 * another are a usage error, as the server would refuse them.
 */
static int
quant_json(const struct sub *s, const struct quant_args *a, json_t **out)
{
	json_t *q;

	*out = NULL;
	if (a->type == NULL) {
		if (a->segments || a->quantile > 0 || a->always_ram)
			return ctl_usage_error(s->usage, "--segments, "
			    "--quantile and --always-ram go with "
			    "--quantization");
		return CTL_OK;
	}
	if (a->segments && strcmp(a->type, "product") != 0)
		return ctl_usage_error(s->usage, "--segments goes with "
		    "--quantization product");
	if (strcmp(a->type, "none") == 0 && (a->quantile > 0 ||
	    a->always_ram))
		return ctl_usage_error(s->usage, "--quantization none takes "
		    "no --quantile or --always-ram");
	if ((q = json_pack("{s:s}", "type", a->type)) == NULL)
		return CTL_FAIL;
	if (a->quantile > 0)
		json_object_set_new(q, "quantile", json_real(a->quantile));
	if (a->always_ram)
		json_object_set_new(q, "always_ram", json_true());
	if (a->segments)
		json_object_set_new(q, "segments", json_integer(a->segments));
	*out = q;
	return CTL_OK;
}

/* A config's quantization in words: "none", "scalar", "product, 2
 * segments", with ", always in RAM" (caller frees). */
static char *
quant_text(const json_t *q)
{
	const char *t = json_string_value(json_object_get(q, "type"));
	json_t *seg = json_object_get(q, "segments");
	char buf[128], *out;
	size_t n;

	n = (size_t) snprintf(buf, sizeof(buf), "%.32s", t ? t : "-");
	if (json_is_integer(seg))
		n += (size_t) snprintf(buf + n, sizeof(buf) - n,
		    ", %lld segments", (long long) json_integer_value(seg));
	if (json_is_true(json_object_get(q, "always_ram")))
		snprintf(buf + n, sizeof(buf) - n, ", always in RAM");
	if ((out = strdup(buf)) == NULL) {
		ctl_errorf("out of memory");
		exit(CTL_FAIL);
	}
	return out;
}

/* The body of collections create from its flags. */
struct create_args {
	long dim, m, efc;
	const char *metric;
	struct quant_args q;
};

/* Parse collections create's flags. */
static int
create_parse(const struct sub *s, int argc, char **argv,
    struct create_args *a)
{
	static const struct option opts[] = {
		{ "dim", required_argument, NULL, 'd' },
		{ "metric", required_argument, NULL, 'M' },
		{ "m", required_argument, NULL, 'm' },
		{ "ef-construction", required_argument, NULL, 'e' },
		QUANT_OPTS,
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int opt, rv = CTL_OK;

	optind = 0;
	while (rv == CTL_OK && (opt = opt_next(s, argc, argv, opts)) != -1)
		switch (opt) {
		case 'd': rv = ctl_parse_long(s->usage, "--dim", optarg, 1,
		    65536, &a->dim); break;
		case 'm': rv = ctl_parse_long(s->usage, "--m", optarg, 2,
		    512, &a->m); break;
		case 'e': rv = ctl_parse_long(s->usage, "--ef-construction",
		    optarg, 1, 100000, &a->efc); break;
		case 'M':
			if ((a->metric = metric_name(optarg)) == NULL)
				rv = ctl_usage_error(s->usage, "unknown metric "
				    "'%s'", optarg);
			break;
		case 'h': fputs(s->usage, stdout); return -1;
		default:
			if ((rv = quant_opt(s, opt, optarg, &a->q)) == 1)
				return CTL_USAGE;
		}
	if (rv != CTL_OK)
		return rv;
	if (argc - optind != 1)
		return ctl_usage_error(s->usage, "create takes one NAME");
	if (a->dim == 0)
		return ctl_usage_error(s->usage, "--dim is required");
	return CTL_OK;
}

/* collections create NAME --dim N ... */
static int
coll_create(struct ctl *c, const struct sub *s, int argc, char **argv)
{
	struct create_args a = { 0, 0, 0, "cosine", { NULL, 0, 0, 0 } };
	json_t *body, *data, *q;
	char *qt;
	int rv;

	if ((rv = create_parse(s, argc, argv, &a)) != CTL_OK ||
	    (rv = quant_json(s, &a.q, &q)) != CTL_OK)
		return rv < 0 ? CTL_OK : rv;
	body = json_pack("{s:s, s:I, s:s, s:{s:I, s:I}}", "name",
	    argv[optind], "dimension", (json_int_t) a.dim, "distance_metric",
	    a.metric, "index_config", "max_connections", (json_int_t) a.m,
	    "ef_construction", (json_int_t) a.efc);
	if (q != NULL)
		json_object_set_new(body, "quantization", q);
	rv = ctl_call(c, "POST", "collections", body, &data);
	json_decref(body);
	if (rv != CTL_OK)
		return rv;
	if (c->json) {
		ctl_print_json(data);
	} else {
		q = json_object_get(data, "quantization");
		qt = quant_text(q);
		printf("created collection '%s' (dimension %lld, %s%s%s)\n",
		    json_string_value(json_object_get(data, "name")),
		    json_integer_value(json_object_get(data, "dimension")),
		    json_string_value(json_object_get(data,
		    "distance_metric")), strcmp(qt, "none") ? ", quantization "
		    : "", strcmp(qt, "none") ? qt : "");
		free(qt);
	}
	json_decref(data);
	return CTL_OK;
}

/* Parse collections update's flags: one NAME and --quantization. */
static int
update_parse(const struct sub *s, int argc, char **argv,
    struct quant_args *a)
{
	static const struct option opts[] = {
		QUANT_OPTS,
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	int opt, rv = CTL_OK;

	optind = 0;
	while (rv == CTL_OK && (opt = opt_next(s, argc, argv, opts)) != -1) {
		if (opt == 'h') {
			fputs(s->usage, stdout);
			return -1;
		}
		if ((rv = quant_opt(s, opt, optarg, a)) == 1)
			return CTL_USAGE;
	}
	if (rv != CTL_OK)
		return rv;
	if (argc - optind != 1)
		return ctl_usage_error(s->usage, "update takes one NAME");
	if (a->type == NULL)
		return ctl_usage_error(s->usage, "--quantization is required "
		    "(the only setting that can be changed)");
	return CTL_OK;
}

/* collections update NAME --quantization ...: PATCH, print the result. */
static int
coll_update(struct ctl *c, const struct sub *s, int argc, char **argv)
{
	struct quant_args a = { NULL, 0, 0, 0 };
	json_t *body, *data, *q;
	char *qt;
	int rv;

	if ((rv = update_parse(s, argc, argv, &a)) != CTL_OK ||
	    (rv = quant_json(s, &a, &q)) != CTL_OK)
		return rv < 0 ? CTL_OK : rv;
	body = json_pack("{s:o}", "quantization", q);
	rv = coll_call(c, "PATCH", argv[optind], NULL, body, &data);
	json_decref(body);
	if (rv != CTL_OK)
		return rv;
	if (c->json) {
		ctl_print_json(data);
	} else {
		qt = quant_text(json_object_get(data, "quantization"));
		printf("collection '%s': quantization %s (the index is rebuilt "
		    "on it in the background)\n", argv[optind], qt);
		free(qt);
	}
	json_decref(data);
	return CTL_OK;
}

/* The quantization rows of collections info: the setting, the codes in
 * force, and the index's memory by kind. */
static void
quant_rows(struct ctl_table *t, const json_t *d)
{
	static const char *const rows[][2] = {
		{ "quant_in_force", "in_force" },
		{ "code_bytes", "code_bytes" },
		{ "link_bytes", "link_bytes" },
		{ "original_bytes", "original_bytes" },
	};
	const json_t *st = json_object_get(json_object_get(d, "stats"),
	    "quantization");
	char *v = quant_text(json_object_get(json_object_get(d, "config"),
	    "quantization"));

	ctl_table_row(t, "quantization", v);
	free(v);
	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		v = ctl_json_text(json_object_get(st, rows[i][1]));
		ctl_table_row(t, rows[i][0], v);
		free(v);
	}
}

/* The FIELD VALUE rows of collections info. */
static void
info_rows(struct ctl_table *t, const json_t *d)
{
	static const char *const rows[][3] = {
		{ "name", "config", "name" },
		{ "dimension", "config", "dimension" },
		{ "metric", "config", "distance_metric" },
		{ "vector_type", "config", "vector_type" },
		{ "vectors", "stats", "vector_count" },
		{ "indexed", "stats", "indexed_count" },
		{ "pending", "stats", "pending_count" },
		{ "indexing_rate", "stats", "indexing_rate" },
		{ "dead", "stats", "dead_count" },
		{ "dead_ratio", "stats", "dead_ratio" },
		{ "optimizer", "optimizer", "status" },
		{ "progress", "optimizer", "progress" },
		{ "compactions", "optimizer", "compactions" },
		{ "disk_bytes", "stats", "disk_usage" },
		{ "memory_bytes", "stats", "memory_usage" },
	};
	const json_t *ix = json_object_get(json_object_get(d, "config"),
	    "index_config");
	const char *ixk[] = { "max_connections", "ef_construction",
		"ef_search" };
	char *v;

	for (size_t i = 0; i < sizeof(rows) / sizeof(rows[0]); i++) {
		v = ctl_json_text(json_object_get(json_object_get(d,
		    rows[i][1]), rows[i][2]));
		ctl_table_row(t, rows[i][0], v);
		free(v);
	}
	for (size_t i = 0; i < 3; i++) {
		v = ctl_json_text(json_object_get(ix, ixk[i]));
		ctl_table_row(t, ixk[i], v);
		free(v);
	}
	quant_rows(t, d);
	v = ctl_json_text(json_object_get(d, "payload_schema"));
	ctl_table_row(t, "payload_indexes", v);
	free(v);
}

/* collections info NAME: config and stats as FIELD VALUE rows. */
static int
coll_info(struct ctl *c, const struct sub *s, int argc, char **argv)
{
	struct ctl_table t;
	json_t *data;
	int rv;

	if ((rv = plain_args(s, argc, argv, 1)) != CTL_OK)
		return rv < 0 ? CTL_OK : rv;
	if ((rv = coll_call(c, "GET", argv[optind], NULL, NULL, &data)) !=
	    CTL_OK)
		return rv;
	if (c->json) {
		ctl_print_json(data);
	} else {
		ctl_table_init(&t, 2, "FIELD", "VALUE");
		info_rows(&t, data);
		ctl_table_print(&t, stdout);
		ctl_table_fini(&t);
	}
	json_decref(data);
	return CTL_OK;
}

/* collections compact NAME: start it, print the optimizer's state. */
static int
coll_compact(struct ctl *c, const struct sub *s, int argc, char **argv)
{
	json_t *data;
	int rv;

	if ((rv = plain_args(s, argc, argv, 1)) != CTL_OK)
		return rv < 0 ? CTL_OK : rv;
	if ((rv = coll_call(c, "POST", argv[optind], "compact", NULL,
		 &data)) != CTL_OK)
		return rv;
	if (c->json) {
		ctl_print_json(data);
	} else {
		const json_t *o = json_object_get(data, "optimizer");
		printf("compacting '%s': %s, %.0f%% done, %lld compactions "
		    "finished (see: vecdbctl collections info %s)\n",
		    argv[optind],
		    json_string_value(json_object_get(o, "status")),
		    100 * json_number_value(json_object_get(o, "progress")),
		    json_integer_value(json_object_get(o, "compactions")),
		    argv[optind]);
	}
	json_decref(data);
	return CTL_OK;
}

/* collections delete NAME. */
static int
coll_delete(struct ctl *c, const struct sub *s, int argc, char **argv)
{
	json_t *data;
	int rv;

	if ((rv = plain_args(s, argc, argv, 1)) != CTL_OK)
		return rv < 0 ? CTL_OK : rv;
	if ((rv = coll_call(c, "DELETE", argv[optind], NULL, NULL, &data)) !=
	    CTL_OK)
		return rv;
	if (c->json)
		ctl_print_json(data);
	else
		printf("deleted collection '%s'\n", argv[optind]);
	json_decref(data);
	return CTL_OK;
}

int
ctl_collections(struct ctl *c, int argc, char **argv)
{
	static const struct sub subs[] = {
		{ "list", "usage: vecdbctl collections list\n", coll_list },
		{ "create", CREATE_USAGE, coll_create },
		{ "update", UPDATE_USAGE, coll_update },
		{ "info", "usage: vecdbctl collections info NAME\n",
		    coll_info },
		{ "delete", "usage: vecdbctl collections delete NAME\n",
		    coll_delete },
		{ "compact", "usage: vecdbctl collections compact NAME\n",
		    coll_compact },
	};

	return family(c, COLL_USAGE, subs, sizeof(subs) / sizeof(subs[0]),
	    argc, argv);
}

/* ===== snapshot ===== */

#define SNAP_USAGE \
	"usage: vecdbctl snapshot create COLLECTION\n" \
	"       vecdbctl snapshot list COLLECTION\n" \
	"       vecdbctl snapshot restore COLLECTION NAME\n"

/* A snapshot's table row. */
static void
snap_row(struct ctl_table *t, const json_t *si)
{
	time_t at = (time_t) json_integer_value(json_object_get(si,
	    "created_at"));
	char when[32], *size = num_text(si, "size_bytes"),
	    *cnt = num_text(si, "vector_count");
	struct tm tm;

	strftime(when, sizeof(when), "%Y-%m-%dT%H:%M:%SZ",
	    gmtime_r(&at, &tm));
	ctl_table_row(t, json_string_value(json_object_get(si, "name")), when,
	    size, cnt, json_string_value(json_object_get(si, "checksum")));
	free(size), free(cnt);
}

/* Print one snapshot or a list of them. */
static void
snap_print(struct ctl *c, const json_t *data)
{
	struct ctl_table t;
	json_t *si;
	size_t i;

	if (c->json) {
		ctl_print_json(data);
		return;
	}
	ctl_table_init(&t, 5, "NAME", "CREATED", "SIZE_BYTES", "VECTORS",
	    "SHA256");
	if (json_is_array(data))
		json_array_foreach(data, i, si)
			snap_row(&t, si);
	else
		snap_row(&t, data);
	ctl_table_print(&t, stdout);
	ctl_table_fini(&t);
}

/* snapshot create|list COLLECTION: POST or GET .../snapshots. */
static int
snap_call(struct ctl *c, const struct sub *s, int argc, char **argv,
    const char *method)
{
	json_t *data;
	int rv;

	if ((rv = plain_args(s, argc, argv, 1)) != CTL_OK)
		return rv < 0 ? CTL_OK : rv;
	if ((rv = coll_call(c, method, argv[optind], "snapshots", NULL,
	    &data)) != CTL_OK)
		return rv;
	snap_print(c, data);
	json_decref(data);
	return CTL_OK;
}

static int
snap_create(struct ctl *c, const struct sub *s, int argc, char **argv)
{
	return snap_call(c, s, argc, argv, "POST");
}

static int
snap_list(struct ctl *c, const struct sub *s, int argc, char **argv)
{
	return snap_call(c, s, argc, argv, "GET");
}

/* snapshot restore COLLECTION NAME. */
static int
snap_restore(struct ctl *c, const struct sub *s, int argc, char **argv)
{
	char *name, *rest;
	json_t *data;
	int rv;

	if ((rv = plain_args(s, argc, argv, 2)) != CTL_OK)
		return rv < 0 ? CTL_OK : rv;
	name = ctl_escape(c, argv[optind + 1]);
	rest = name ? malloc(strlen(name) + 32) : NULL;
	if (rest == NULL) {
		free(name);
		ctl_errorf("out of memory");
		return CTL_FAIL;
	}
	sprintf(rest, "snapshots/%s/restore", name);
	rv = coll_call(c, "POST", argv[optind], rest, NULL, &data);
	free(rest), free(name);
	if (rv != CTL_OK)
		return rv;
	if (c->json)
		ctl_print_json(data);
	else
		printf("restored '%s' from snapshot %s (%lld points)\n",
		    argv[optind], argv[optind + 1], json_integer_value(
		    json_object_get(data, "vector_count")));
	json_decref(data);
	return CTL_OK;
}

int
ctl_snapshot(struct ctl *c, int argc, char **argv)
{
	static const struct sub subs[] = {
		{ "create", "usage: vecdbctl snapshot create COLLECTION\n",
		    snap_create },
		{ "list", "usage: vecdbctl snapshot list COLLECTION\n",
		    snap_list },
		{ "restore", "usage: vecdbctl snapshot restore COLLECTION "
		    "NAME\n", snap_restore },
	};

	return family(c, SNAP_USAGE, subs, 3, argc, argv);
}

/* ===== search ===== */

#define SEARCH_USAGE \
	"usage: vecdbctl search COLLECTION (--vector X,Y,... [--using NAME] " \
	"| --sparse NAME:I=V,I=V,... | both [--fusion rrf|relative_score|" \
	"dbsf]) [--limit K] [--filter JSON] [--exact]\n"

/* "0.1,0.2,..." as a JSON array of numbers. */
static int
vector_parse(const char *s, json_t **out)
{
	json_t *a = json_array();
	char *end;

	for (;;) {
		double v = strtod(s, &end);
		if (end == s || !isfinite(v) || (*end != ',' && *end != '\0')) {
			json_decref(a);
			return ctl_usage_error(SEARCH_USAGE, "--vector: '%s' is "
			    "not a comma-separated list of numbers", s);
		}
		json_array_append_new(a, json_real(v));
		if (*end == '\0')
			break;
		s = end + 1;
	}
	*out = a;
	return CTL_OK;
}

/* "NAME:I=V,I=V,..." as {"using": NAME, "indices": [I...], "values":
 * [V...]}. */
static int
sparse_parse(const char *arg, json_t **out)
{
	const char *colon = strchr(arg, ':'), *s;
	json_t *ix = json_array(), *va = json_array();
	char *end;

	if (colon == NULL || colon == arg)
		goto bad;
	for (s = colon + 1; *s != '\0';) {
		unsigned long long i;
		double v;

		if (*s < '0' || *s > '9')
			goto bad;
		i = strtoull(s, &end, 10);
		if (*end != '=' || i > UINT32_MAX)
			goto bad;
		s = end + 1;
		v = strtod(s, &end);
		if (end == s || !isfinite(v) || (*end != ',' && *end != '\0'))
			goto bad;
		json_array_append_new(ix, json_integer((json_int_t) i));
		json_array_append_new(va, json_real(v));
		s = *end == ',' ? end + 1 : end;
	}
	*out = json_pack("{s:s#, s:o, s:o}", "using", arg,
	    (int) (colon - arg), "indices", ix, "values", va);
	return CTL_OK;
bad:
	json_decref(ix);
	json_decref(va);
	return ctl_usage_error(SEARCH_USAGE, "--sparse: '%s' is not "
	    "NAME:INDEX=VALUE,...", arg);
}

/* Parse search's flags into the request body. */
static int
search_parse(int argc, char **argv, json_t *body)
{
	static const struct option opts[] = {
		{ "vector", required_argument, NULL, 'v' },
		{ "sparse", required_argument, NULL, 's' },
		{ "fusion", required_argument, NULL, 'u' },
		{ "using", required_argument, NULL, 'n' },
		{ "limit", required_argument, NULL, 'l' },
		{ "filter", required_argument, NULL, 'f' },
		{ "exact", no_argument, NULL, 'x' },
		{ "help", no_argument, NULL, 'h' },
		{ NULL, 0, NULL, 0 },
	};
	struct sub s = { "search", SEARCH_USAGE, NULL };
	json_t *v = NULL;
	json_error_t je;
	long limit;
	int opt;

	optind = 0;
	while ((opt = opt_next(&s, argc, argv, opts)) != -1)
		switch (opt) {
		case 'v':
			if (vector_parse(optarg, &v) != CTL_OK)
				return CTL_USAGE;
			json_object_set_new(body, "vector", v);
			break;
		case 'l':
			if (ctl_parse_long(SEARCH_USAGE, "--limit", optarg, 1,
			    100000, &limit) != CTL_OK)
				return CTL_USAGE;
			json_object_set_new(body, "limit", json_integer(limit));
			break;
		case 'f':
			if ((v = json_loads(optarg, 0, &je)) == NULL)
				return ctl_usage_error(SEARCH_USAGE, "--filter "
				    "is not JSON: %s", je.text);
			json_object_set_new(body, "filter", v);
			break;
		case 'x': json_object_set_new(body, "exact", json_true());
			break;
		case 's':
			if (sparse_parse(optarg, &v) != CTL_OK)
				return CTL_USAGE;
			json_object_set_new(body, "sparse_vector", v);
			break;
		case 'u':
			json_object_set_new(body, "fusion", json_string(optarg));
			break;
		case 'n':
			json_object_set_new(body, "using", json_string(optarg));
			break;
		case 'h': fputs(SEARCH_USAGE, stdout); return -1;
		default: return CTL_USAGE;
		}
	if (argc - optind != 1)
		return ctl_usage_error(SEARCH_USAGE, "search takes one "
		    "COLLECTION");
	if (json_object_get(body, "vector") == NULL &&
	    json_object_get(body, "sparse_vector") == NULL)
		return ctl_usage_error(SEARCH_USAGE, "--vector or --sparse is "
		    "required");
	if (json_object_get(body, "using") != NULL &&
	    json_object_get(body, "vector") == NULL)
		return ctl_usage_error(SEARCH_USAGE, "--using names the dense "
		    "vector of --vector: give one");
	if (json_object_get(body, "fusion") != NULL &&
	    (json_object_get(body, "vector") == NULL ||
	    json_object_get(body, "sparse_vector") == NULL))
		return ctl_usage_error(SEARCH_USAGE, "--fusion fuses a "
		    "--vector and a --sparse search: give both");
	return CTL_OK;
}

/* --vector and --sparse together: the body of a hybrid search. */
static json_t *
hybrid_body(json_t *b)
{
	json_t *h = json_pack("{s:{s:O}, s:O}", "dense", "vector",
	    json_object_get(b, "vector"), "sparse",
	    json_object_get(b, "sparse_vector"));

	if (h != NULL && json_object_get(b, "using") != NULL)
		json_object_set(json_object_get(h, "dense"), "using",
		    json_object_get(b, "using"));
	static const char *const keep[] = { "fusion", "limit", "filter" };

	for (size_t i = 0; h != NULL && i < 3; i++)
		if (json_object_get(b, keep[i]) != NULL)
			json_object_set(h, keep[i], json_object_get(b,
			    keep[i]));
	return h;
}

/* The hits as ID DISTANCE PAYLOAD (SCORE for sparse and hybrid). */
static void
hits_print(const json_t *hits, int scored)
{
	struct ctl_table t;
	char dist[32], *id, *pl;
	json_t *h;
	size_t i;

	ctl_table_init(&t, 3, "ID", scored ? "SCORE" : "DISTANCE", "PAYLOAD");
	json_array_foreach(hits, i, h) {
		id = ctl_json_text(json_object_get(h, "id"));
		pl = ctl_json_text(json_object_get(h, "metadata"));
		snprintf(dist, sizeof(dist), "%.6g", json_number_value(
		    json_object_get(h, scored ? "score" : "distance")));
		ctl_table_row(&t, id, dist, pl);
		free(id), free(pl);
	}
	ctl_table_print(&t, stdout);
	ctl_table_fini(&t);
}

int
ctl_search(struct ctl *c, int argc, char **argv)
{
	json_t *body = json_object(), *data;
	int rv, hybrid, scored;

	if ((rv = search_parse(argc, argv, body)) != CTL_OK) {
		json_decref(body);
		return rv < 0 ? CTL_OK : rv;
	}
	hybrid = json_object_get(body, "vector") != NULL &&
	    json_object_get(body, "sparse_vector") != NULL;
	if (hybrid) {
		json_t *h = hybrid_body(body);

		json_decref(body);
		body = h;
	}
	rv = coll_call(c, "POST", argv[optind], hybrid ? "search/hybrid" :
	    "search", body, &data);
	scored = hybrid || json_object_get(body, "sparse_vector") != NULL;
	json_decref(body);
	if (rv != CTL_OK)
		return rv;
	if (c->json)
		ctl_print_json(data);
	else
		hits_print(data, scored);
	json_decref(data);
	return CTL_OK;
}
