/*
 * ctl_main.c: `vecdbctl [global flags] COMMAND ...`: the global flags and
 * the dispatch to the command families.
 */
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "ctl.h"

static const char usage_text[] =
"usage: vecdbctl [--url URL] [--api-key KEY] [--json] [--timeout S] COMMAND\n"
"\n"
"commands:\n"
"  cluster status\n"
"  collections list\n"
"  collections create NAME --dim N [--metric cosine|euclidean|dot|manhattan]\n"
"                     [--m M] [--ef-construction E]\n"
"                     [--quantization none|scalar|binary|product]\n"
"                     [--segments S] [--quantile Q] [--always-ram]\n"
"  collections update NAME --quantization none|scalar|binary|product\n"
"                     [--segments S] [--quantile Q] [--always-ram]\n"
"  collections info NAME\n"
"  collections delete NAME\n"
"  collections compact NAME\n"
"  points import COLLECTION FILE.jsonl|- [--batch N]\n"
"  snapshot create COLLECTION\n"
"  snapshot list COLLECTION\n"
"  snapshot restore COLLECTION NAME\n"
"  search COLLECTION (--vector X,Y,... | --sparse NAME:I=V,... | both\n"
"         [--fusion rrf|relative_score|dbsf]) [--limit K] [--filter JSON] [--exact]\n"
"  promote NODE    (a replica's node id or rpc url; through a router)\n"
"\n"
"global flags:\n"
"  --url URL      the server or router (default $VECDB_URL, else\n"
"                 " CTL_DEFAULT_URL ")\n"
"  --api-key KEY  sent as api-key (default $VECDB_API_KEY)\n"
"  --json         print the server's data as JSON instead of a table\n"
"  --timeout S    seconds per request (default 60)\n"
"\n"
"`vecdbctl COMMAND --help` shows a command's usage. Exit status: 0 done,\n"
"1 the server refused or could not be reached (or bad input), 2 bad usage.\n";

static const struct option global_opts[] = {
	{ "url", required_argument, NULL, 'u' },
	{ "api-key", required_argument, NULL, 'k' },
	{ "json", no_argument, NULL, 'j' },
	{ "timeout", required_argument, NULL, 't' },
	{ "help", no_argument, NULL, 'h' },
	{ NULL, 0, NULL, 0 },
};

int
ctl_usage_error(const char *usage, const char *fmt, ...)
{
	va_list ap;

	fputs("vecdbctl: ", stderr);
	va_start(ap, fmt);
	vfprintf(stderr, fmt, ap);
	va_end(ap);
	fprintf(stderr, "\n%s", usage);
	return CTL_USAGE;
}

int
ctl_parse_long(const char *usage, const char *what, const char *s, long lo,
    long hi, long *out)
{
	char *end;
	long v;

	errno = 0;
	v = strtol(s, &end, 10);
	if (end == s || *end != '\0' || errno != 0 || v < lo || v > hi)
		return ctl_usage_error(usage, "%s '%s' is not a number in "
		    "%ld..%ld", what, s, lo, hi);
	*out = v;
	return CTL_OK;
}

/* The global flags into c; CTL_OK, CTL_USAGE, or -1 after --help. */
static int
globals_parse(struct ctl *c, int argc, char **argv)
{
	int opt;

	c->url = getenv("VECDB_URL") && *getenv("VECDB_URL") ?
	    getenv("VECDB_URL") : CTL_DEFAULT_URL;
	c->api_key = getenv("VECDB_API_KEY");
	c->timeout_s = CTL_TIMEOUT_S_DEFAULT;
	/* "+": stop at the command, its flags are its own. */
	opterr = 0;
	while ((opt = getopt_long(argc, argv, "+", global_opts, NULL)) != -1) {
		switch (opt) {
		case 'u': c->url = optarg; break;
		case 'k': c->api_key = optarg; break;
		case 'j': c->json = 1; break;
		case 't':
			if (ctl_parse_long(usage_text, "--timeout", optarg, 1,
			    86400, &c->timeout_s) != CTL_OK)
				return CTL_USAGE;
			break;
		case 'h': fputs(usage_text, stdout); return -1;
		default: return ctl_usage_error(usage_text, "bad option '%s'",
		    argv[optind - 1]);
		}
	}
	if (c->api_key != NULL && *c->api_key == '\0')
		c->api_key = NULL;
	return CTL_OK;
}

/* --json may also follow the command (where scripts tend to put it):
 * take it out of the command's words. Returns the new argc. */
static int
json_flag_take(struct ctl *c, int argc, char **argv)
{
	int n = 0;

	for (int i = 0; i < argc; i++) {
		if (strcmp(argv[i], "--") == 0) {
			while (i < argc)
				argv[n++] = argv[i++];
			break;
		}
		if (strcmp(argv[i], "--json") == 0)
			c->json = 1;
		else
			argv[n++] = argv[i];
	}
	return n;
}

/* Run the command in argv[0..argc). */
static int
dispatch(struct ctl *c, int argc, char **argv)
{
	static const struct {
		const char *name;
		int (*fn)(struct ctl *, int, char **);
	} cmds[] = {
		{ "cluster", ctl_cluster },
		{ "collections", ctl_collections },
		{ "points", ctl_points },
		{ "snapshot", ctl_snapshot },
		{ "search", ctl_search },
		{ "promote", ctl_promote },
	};

	if (argc == 0)
		return ctl_usage_error(usage_text, "a command is required");
	for (size_t i = 0; i < sizeof(cmds) / sizeof(cmds[0]); i++)
		if (strcmp(argv[0], cmds[i].name) == 0)
			return cmds[i].fn(c, argc, argv);
	if (strcmp(argv[0], "help") == 0) {
		fputs(usage_text, stdout);
		return CTL_OK;
	}
	return ctl_usage_error(usage_text, "unknown command '%s'", argv[0]);
}

int
main(int argc, char **argv)
{
	struct ctl c;
	int rv;

	memset(&c, 0, sizeof(c));
	if ((rv = globals_parse(&c, argc, argv)) != CTL_OK)
		return rv < 0 ? CTL_OK : rv;
	if ((rv = ctl_open(&c)) != CTL_OK)
		return rv;
	argc = optind + json_flag_take(&c, argc - optind, argv + optind);
	rv = dispatch(&c, argc - optind, argv + optind);
	ctl_close(&c);
	return rv;
}
