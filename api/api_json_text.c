/*
 * api_json_text.c: JSON text in and out of the REST API, with unsigned
 * integers above INT64_MAX carried exactly.
 *
 * Point ids go up to UINT64_MAX, but jansson reads every integer into a
 * signed json_int_t and refuses a larger one ("too big integer"); nor
 * can json_integer() hold one to print. So a body goes through one exact
 * pre-pass: each integer literal in (INT64_MAX, UINT64_MAX] outside
 * strings becomes the string "\u0000" followed by its digits, and the
 * text is parsed with JSON_ALLOW_NUL. No client can send such a string
 * (a body with \u0000 anywhere is parsed without JSON_ALLOW_NUL, and
 * jansson refuses it as before), so it stands for that number alone.
 * api_json_get_u64() reads it; api_json_uint() makes one; and
 * api_json_dumps() prints each back as the bare number.
 *
 * A request body's top-level "vector" (a search's query, a point's data)
 * is most of a search request's bytes, and jansson takes about 40 us to
 * read 128 numbers (a real and an allocation each; strtod behind a
 * locale lookup). api_json_loadb_body() reads such an array here, into
 * floats, exactly as api_vector_from_json() would make them from
 * jansson's values, and hands them on as one marked string: a NUL, 'f'
 * and the floats' bytes, put in the parsed tree in place of a short
 * "\u0000f" that stood for the array in the text jansson read. Anything it does not read the same way (not
 * a plain array of JSON numbers, an integer past 15 digits, a value out
 * of float range, an error anywhere) is left to the plain path, so what
 * is accepted and refused, and every message, stays the same.
 *
 * A payload is stored as compact JSON text. An answer that carries it
 * whole takes it as that text (api_json_raw(): a NUL, 'j' and the text,
 * as one string), and api_json_dumps() prints the text in its place, as
 * it is. Parsing it into values only to print them again cost most of
 * the allocations of a search answer, and printed the payload's reals
 * with the nine digits of the answer's floats, not the digits stored.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <locale.h>
#include <math.h>
#include <pthread.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>

#include <string.h>

#include "api_json_text.h"
#include "vdb.h"

#define U64_MARK "\\u0000"     /* the marker string's prefix, as text */
#define U64_MARK_LEN 6
#define U64_EXTRA (U64_MARK_LEN + 2) /* the marker and quotes a number
				      * gains in the text */
#define RAW_MARK U64_MARK "j"   /* a JSON text to print as it is */
#define RAW_MARK_LEN (U64_MARK_LEN + 1)

/* ===== The pre-pass ===== */

/* Is the escape at s (after a backslash, n bytes left) \u0000? */
static int
nul_escape(const char *s, size_t n)
{
	return n >= 5 && memcmp(s, "u0000", 5) == 0;
}

/* Past the string starting after an opening quote at s[i]; *nul when it
 * holds \u0000. */
static size_t
string_skip(const char *s, size_t len, size_t i, int *nul)
{
	for (; i < len; i++) {
		if (s[i] == '\\') {
			*nul |= nul_escape(s + i + 1, len - i - 1);
			i++;
		} else if (s[i] == '"') {
			return i + 1;
		}
	}
	return len;
}

/* The length of the number-like run at s (digits, sign, dot, exponent). */
static size_t
number_len(const char *s, size_t len)
{
	size_t n = 0;

	while (n < len && ((s[n] >= '0' && s[n] <= '9') || s[n] == '-' ||
	    s[n] == '+' || s[n] == '.' || s[n] == 'e' || s[n] == 'E'))
		n++;
	return n;
}

/* Is s[0..n) an integer literal in (INT64_MAX, UINT64_MAX]? */
static int
is_big(const char *s, size_t n)
{
	for (size_t i = 0; i < n; i++)
		if (s[i] < '0' || s[i] > '9')
			return 0;
	if (s[0] == '0')
		return 0; /* not JSON: jansson says so */
	if (n == 19)
		return memcmp(s, "9223372036854775807", 19) > 0;
	return n == 20 && memcmp(s, "18446744073709551615", 20) <= 0;
}

/*
 * Scan a text; with out, copy it there with each big integer marked.
 * @return the big integers found, or -1 when a string holds \u0000.
 */
static long
mark_scan(const char *s, size_t len, char *out)
{
	size_t i = 0, o = 0, n;
	long big = 0;
	int nul = 0;

	while (i < len) {
		if (s[i] == '"') {
			n = string_skip(s, len, i + 1, &nul) - i;
		} else if ((s[i] >= '0' && s[i] <= '9') || s[i] == '-') {
			n = number_len(s + i, len - i);
			if (is_big(s + i, n)) {
				big++;
				if (out != NULL) {
					memcpy(out + o, "\"" U64_MARK, 1 +
					    U64_MARK_LEN);
					memcpy(out + o + 1 + U64_MARK_LEN,
					    s + i, n);
					out[o + 1 + U64_MARK_LEN + n] = '"';
					o += n + U64_EXTRA;
				}
				i += n;
				continue;
			}
		} else {
			n = 1;
		}
		if (out != NULL)
			memcpy(out + o, s + i, n);
		o += n;
		i += n;
	}
	return nul ? -1 : big;
}

/* Is the string whose opening quote is s[0] (n bytes with its quotes)
 * a marked number? */
static int
is_marked(const char *s, size_t n)
{
	if (n <= U64_EXTRA || memcmp(s + 1, U64_MARK, U64_MARK_LEN) != 0 ||
	    s[n - 1] != '"')
		return 0;
	for (size_t i = 1 + U64_MARK_LEN; i < n - 1; i++)
		if (s[i] < '0' || s[i] > '9')
			return 0;
	return 1;
}

/*
 * Where jansson's error in a marked text of len bytes is in the text the
 * client sent: take out what the markers before it added. An error
 * inside a marked string (jansson places "end of file expected" on the
 * last byte of the token after a raw NUL: "0\0" then a big number) is
 * placed on the number as if jansson had read it: its closing quote on the
 * last digit, the marker on the first.
 */
static void
error_unmark(const char *s, size_t len, json_error_t *err)
{
	size_t shift = 0, line_shift = 0, i = 0, n, k;
	size_t pos = err->position >= 0 ? (size_t) err->position : 0;
	int nul = 0;

	while (i < pos && i < len) {
		n = 1;
		if (s[i] == '\n') {
			line_shift = 0;
		} else if (s[i] == '"') {
			n = string_skip(s, len, i + 1, &nul) - i;
			if (is_marked(s + i, n)) {
				k = i + n - 1 <= pos ? U64_EXTRA :
				    pos - i < 1 + U64_MARK_LEN ? pos - i :
				    1 + U64_MARK_LEN;
				shift += k;
				line_shift += k;
			}
		}
		i += n;
	}
	err->position -= (int) shift;
	err->column -= (int) line_shift;
}

/* api_json_loadb with mark_scan(buf, len, NULL) already counted: big. */
static json_t *
load_marked(const char *buf, size_t len, long big, size_t flags,
    json_error_t *err)
{
	json_t *j;
	char *m;

	if (big <= 0)
		return json_loadb(buf, len, flags, err);
	if ((m = vdb_malloc(len + (size_t) big * U64_EXTRA)) == NULL) {
		/* as jansson reports its own failures */
		snprintf(err->text, sizeof(err->text), "out of memory");
		err->text[JSON_ERROR_TEXT_LENGTH - 1] = json_error_out_of_memory;
		err->line = err->column = err->position = -1;
		err->source[0] = '\0';
		return NULL;
	}
	mark_scan(buf, len, m);
	j = json_loadb(m, len + (size_t) big * U64_EXTRA,
	    flags | JSON_ALLOW_NUL, err);
	if (j == NULL)
		error_unmark(m, len + (size_t) big * U64_EXTRA, err);
	vdb_free(m);
	return j;
}

json_t *
api_json_loadb(const char *buf, size_t len, size_t flags, json_error_t *err)
{
	return load_marked(buf, len, mark_scan(buf, len, NULL), flags, err);
}

/* ===== The top-level "vector" ===== */

#define VEC_MARK "\\u0000f"   /* a marked float array's prefix, as text */
#define VEC_MARK_LEN 7
#define VEC_NUM_MAX 40        /* longer number tokens take the plain path */

static locale_t c_locale;
static pthread_once_t c_locale_once = PTHREAD_ONCE_INIT;

static void
c_locale_make(void)
{
	c_locale = newlocale(LC_ALL_MASK, "C", (locale_t) 0);
}

static size_t
ws_skip(const char *s, size_t len, size_t i)
{
	while (i < len && (s[i] == ' ' || s[i] == '\t' || s[i] == '\n' ||
	    s[i] == '\r'))
		i++;
	return i;
}

/* Past the value starting at s[i] (not checked: jansson does that later),
 * at the ',' or '}' that ends it, or len. */
static size_t
value_skip(const char *s, size_t len, size_t i)
{
	int depth = 0, nul = 0;

	while (i < len) {
		if (s[i] == '"') {
			i = string_skip(s, len, i + 1, &nul);
			continue;
		}
		if (s[i] == '{' || s[i] == '[')
			depth++;
		else if ((s[i] == '}' || s[i] == ']') && depth-- == 0)
			return i;
		else if (s[i] == ',' && depth == 0)
			return i;
		i++;
	}
	return len;
}

/*
 * The JSON number at s[i..) as api_vector_from_json() makes it from
 * jansson's value: an integer through json_int_t, a real through strtod
 * (in the C locale, as jansson does), then (float). @return the index
 * past it, or 0 when it is not a JSON number, an integer past 15 digits,
 * or a value that is not a finite float.
 */
static size_t
number_read(const char *s, size_t len, size_t i, float *out)
{
	static const double p10[] = { 1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6,
		1e7, 1e8, 1e9, 1e10, 1e11, 1e12, 1e13, 1e14, 1e15, 1e16, 1e17,
		1e18, 1e19, 1e20, 1e21, 1e22 };
	size_t st = i, digits = 0;
	uint64_t m = 0;
	long frac = 0, e = 0;
	int neg = 0, real = 0, esign = 1;
	double d;
	char buf[VEC_NUM_MAX + 1];

	if (i < len && s[i] == '-') {
		neg = 1;
		i++;
	}
	if (i >= len || s[i] < '0' || s[i] > '9')
		return 0;
	if (s[i] == '0') {
		i++;
	} else {
		for (; i < len && s[i] >= '0' && s[i] <= '9'; i++, digits++)
			if (digits < 19)
				m = m * 10 + (uint64_t) (s[i] - '0');
	}
	if (i < len && s[i] == '.') {
		real = 1;
		if (++i >= len || s[i] < '0' || s[i] > '9')
			return 0;
		for (; i < len && s[i] >= '0' && s[i] <= '9'; i++, frac++) {
			if (m != 0 || s[i] != '0')
				digits++;
			if (digits < 19)
				m = m * 10 + (uint64_t) (s[i] - '0');
		}
	}
	if (i < len && (s[i] == 'e' || s[i] == 'E')) {
		real = 1;
		if (++i < len && (s[i] == '+' || s[i] == '-'))
			esign = s[i++] == '-' ? -1 : 1;
		if (i >= len || s[i] < '0' || s[i] > '9')
			return 0;
		for (; i < len && s[i] >= '0' && s[i] <= '9'; i++)
			if (e < 100000)
				e = e * 10 + (s[i] - '0');
	}
	if (!real) {
		/* jansson's json_int_t, then a double: -0 is 0 */
		if (digits > 15)
			return 0;
		d = (double) (neg ? -(int64_t) m : (int64_t) m);
	} else if (digits <= 15 && frac < 19 && (e = esign * e - frac) >= -22
	    && e <= 22) {
		/* exact: m and 10^|e| are doubles, and one division or
		 * multiplication rounds once, as strtod does */
		d = e < 0 ? (double) m / p10[-e] : (double) m * p10[e];
		if (neg)
			d = -d;
	} else {
		if (i - st > VEC_NUM_MAX)
			return 0;
		memcpy(buf, s + st, i - st);
		buf[i - st] = '\0';
		pthread_once(&c_locale_once, c_locale_make);
		if (c_locale == (locale_t) 0)
			return 0;
		d = strtod_l(buf, NULL, c_locale);
	}
	*out = (float) d;
	return isfinite(*out) ? i : 0;
}

/* The floats of the array at s[i] ('['): a vdb_malloc'd array and its
 * length, and the index past ']'; 0 when not a plain array of numbers. */
static size_t
array_read(const char *s, size_t len, size_t i, float **out, size_t *n)
{
	size_t cap = 0, k = 0, past;
	float *v = NULL, *nv;

	i = ws_skip(s, len, i + 1);
	for (;;) {
		if (k == cap) {
			cap = cap ? cap * 2 : 256;
			if (cap > VECDB_DIM_MAX ||
			    (nv = vdb_realloc(v, cap * sizeof(float))) == NULL)
				goto no;
			v = nv;
		}
		if ((past = number_read(s, len, i, &v[k])) == 0)
			goto no;
		k++;
		i = ws_skip(s, len, past);
		if (i < len && s[i] == ']')
			break;
		if (i >= len || s[i] != ',')
			goto no;
		i = ws_skip(s, len, i + 1);
	}
	*out = v;
	*n = k;
	return i + 1;
no:
	vdb_free(v);
	return 0;
}

/* Where the first top-level @p name of the object text s has its value
 * (*at); 0 when there is none, or it is not an array. */
static int
vector_find(const char *s, size_t len, const char *name, size_t *at)
{
	size_t i = ws_skip(s, len, 0), key, key_end, nl = strlen(name);
	int nul = 0;

	if (i >= len || s[i] != '{')
		return 0;
	for (i = ws_skip(s, len, i + 1); i < len && s[i] == '"';) {
		key = i;
		key_end = string_skip(s, len, i + 1, &nul);
		i = ws_skip(s, len, key_end);
		if (i >= len || s[i] != ':')
			return 0;
		i = ws_skip(s, len, i + 1);
		if (key_end - key == nl + 2 && memcmp(s + key + 1, name, nl) ==
		    0) {
			*at = i;
			return i < len && s[i] == '[';
		}
		i = value_skip(s, len, i);
		if (i >= len || s[i] != ',')
			return 0;
		i = ws_skip(s, len, i + 1);
	}
	return 0;
}

json_t *
api_json_loadb_body(const char *buf, size_t len, size_t flags,
    json_error_t *err)
{
	return api_json_loadb_body_key(buf, len, flags, "vector", err);
}

json_t *
api_json_loadb_body_key(const char *buf, size_t len, size_t flags,
    const char *name, json_error_t *err)
{
	size_t at, end, n, o;
	long big = mark_scan(buf, len, NULL), before;
	float *v = NULL;
	json_t *j, *mark;
	char *m;

	if (big < 0 || !vector_find(buf, len, name, &at) ||
	    (end = array_read(buf, len, at, &v, &n)) == 0)
		return load_marked(buf, len, big, flags, err);
	/* the text with the array as a short marked string, then the floats
	 * put in its place as they are (jansson copies them, unread) */
	if ((m = vdb_malloc(len + (size_t) big * U64_EXTRA + 1 +
	    VEC_MARK_LEN + 1)) == NULL)
		goto plain;
	before = big ? mark_scan(buf, at, m) : (memcpy(m, buf, at), 0);
	o = at + (size_t) before * U64_EXTRA;
	memcpy(m + o, "\"" VEC_MARK "\"", VEC_MARK_LEN + 2);
	o += VEC_MARK_LEN + 2;
	if (big > before)
		mark_scan(buf + end, len - end, m + o);
	else
		memcpy(m + o, buf + end, len - end);
	o += len - end + (size_t) (big - before) * U64_EXTRA;
	j = json_loadb(m, o, flags | JSON_ALLOW_NUL, NULL);
	vdb_free(m);
	if (j == NULL)
		goto plain;   /* an error: the plain path says where */
	if ((m = vdb_malloc(2 + n * sizeof(float))) == NULL) {
		json_decref(j);
		goto plain;
	}
	m[0] = '\0';
	m[1] = 'f';
	memcpy(m + 2, v, n * sizeof(float));
	mark = json_stringn_nocheck(m, 2 + n * sizeof(float));
	vdb_free(m);
	if (mark == NULL || json_object_set_new(j, name, mark) != 0) {
		json_decref(j);
		goto plain;
	}
	vdb_free(v);
	return j;
plain:
	vdb_free(v);
	return load_marked(buf, len, big, flags, err);
}

int
api_json_is_floats(const json_t *j)
{
	const char *s;
	size_t len;

	return json_is_string(j) && (len = json_string_length(j)) > 2 &&
	    (s = json_string_value(j))[0] == '\0' && s[1] == 'f' &&
	    (len - 2) % sizeof(float) == 0;
}

int
api_json_get_floats(const json_t *j, float **out, uint32_t *n)
{
	const char *s;
	size_t len;
	float *v;

	if (!json_is_string(j) || (len = json_string_length(j)) <= 2 ||
	    (s = json_string_value(j))[0] != '\0' || s[1] != 'f' ||
	    (len - 2) % sizeof(float) != 0)
		return 0;
	if ((v = vdb_malloc(len - 2)) == NULL)
		return -1;
	memcpy(v, s + 2, len - 2);
	*out = v;
	*n = (uint32_t) ((len - 2) / sizeof(float));
	return 1;
}

/* ===== Values ===== */

json_t *
api_json_uint(uint64_t v)
{
	char buf[24];
	int n;

	if (v <= (uint64_t) INT64_MAX)
		return json_integer((json_int_t) v);
	buf[0] = '\0';
	n = snprintf(buf + 1, sizeof(buf) - 1, "%llu", (unsigned long long) v);
	return json_stringn(buf, (size_t) n + 1);
}

/* Is j a marked number? Its digits, or NULL. */
static const char *
mark_digits(const json_t *j)
{
	const char *s;
	size_t n;

	if (!json_is_string(j) || (n = json_string_length(j)) < 2 ||
	    (s = json_string_value(j))[0] != '\0')
		return NULL;
	for (size_t i = 1; i < n; i++)
		if (s[i] < '0' || s[i] > '9')
			return NULL;
	return s + 1;
}

int
api_json_get_u64(const json_t *j, uint64_t *out)
{
	const char *d;

	if (json_is_integer(j) && json_integer_value(j) >= 0) {
		*out = (uint64_t) json_integer_value(j);
		return 1;
	}
	if ((d = mark_digits(j)) == NULL)
		return 0;
	*out = strtoull(d, NULL, 10); /* in range: the pre-pass checked */
	return 1;
}

int
api_json_is_big(const json_t *j)
{
	return mark_digits(j) != NULL;
}

int
api_json_check_int64(const json_t *j, const char *what)
{
	const char *key, *d;
	size_t i;
	json_t *v;

	if ((d = mark_digits(j)) != NULL)
		return vdb_err(VECDB_EINVAL, "%s: %s is out of range (the "
		    "largest integer here is 9223372036854775807)", what, d);
	if (json_is_array(j))
		json_array_foreach(j, i, v)
			if (api_json_check_int64(v, what) != VECDB_OK)
				return VECDB_EINVAL;
	if (json_is_object(j))
		json_object_foreach((json_t *) j, key, v)
			if (api_json_check_int64(v, what) != VECDB_OK)
				return VECDB_EINVAL;
	return VECDB_OK;
}

/* ===== Output ===== */

json_t *
api_json_raw(const char *text)
{
	size_t n = strlen(text);
	char small[512], *b = n + 2 <= sizeof(small) ? small : malloc(n + 2);
	json_t *j;

	if (b == NULL)
		return NULL;
	b[0] = '\0';
	b[1] = 'j';
	memcpy(b + 2, text, n);
	j = json_stringn(b, n + 2);
	if (b != small)
		free(b);
	return j;
}

json_t *
api_json_raw_tree(json_t *t)
{
	char *s = t != NULL ? json_dumps(t, JSON_COMPACT | JSON_ENCODE_ANY) :
	    NULL;
	json_t *j = NULL;

	if (s != NULL) {
		vdb_json_reals_shortest(s);
		j = api_json_raw(s);
	}
	free(s);
	json_decref(t);
	return j;
}

/* Is the string whose opening quote is s[0] (n bytes with its quotes)
 * a raw JSON text? */
static int
is_raw(const char *s, size_t n)
{
	return n >= 2 + RAW_MARK_LEN && memcmp(s + 1, RAW_MARK,
	    RAW_MARK_LEN) == 0 && s[n - 1] == '"';
}

/* The value of the 4 hex digits at s, or -1. */
static long
hex4(const char *s)
{
	long v = 0;

	for (int i = 0; i < 4; i++) {
		char c = s[i];
		int d = c >= '0' && c <= '9' ? c - '0' : c >= 'a' && c <= 'f' ?
		    c - 'a' + 10 : c >= 'A' && c <= 'F' ? c - 'A' + 10 : -1;
		if (d < 0)
			return -1;
		v = v * 16 + d;
	}
	return v;
}

/* Code point cp as UTF-8 at out; returns its length. */
static size_t
utf8_put(char *out, unsigned long cp)
{
	if (cp < 0x80) {
		out[0] = (char) cp;
		return 1;
	}
	if (cp < 0x800) {
		out[0] = (char) (0xC0 | (cp >> 6));
		out[1] = (char) (0x80 | (cp & 0x3F));
		return 2;
	}
	if (cp < 0x10000) {
		out[0] = (char) (0xE0 | (cp >> 12));
		out[1] = (char) (0x80 | ((cp >> 6) & 0x3F));
		out[2] = (char) (0x80 | (cp & 0x3F));
		return 3;
	}
	out[0] = (char) (0xF0 | (cp >> 18));
	out[1] = (char) (0x80 | ((cp >> 12) & 0x3F));
	out[2] = (char) (0x80 | ((cp >> 6) & 0x3F));
	out[3] = (char) (0x80 | (cp & 0x3F));
	return 4;
}

/*
 * Undo a printed string's escapes: its content s[0..n) into out, which
 * may be s or before it in the same text (nothing gets longer). Returns
 * the length written.
 */
static size_t
unescape(const char *s, size_t n, char *out)
{
	size_t i = 0, o = 0;
	long cp, lo;

	while (i < n) {
		char c = s[i++];
		if (c != '\\' || i >= n) {
			out[o++] = c;
			continue;
		}
		switch ((c = s[i++])) {
		case 'b': out[o++] = '\b'; break;
		case 'f': out[o++] = '\f'; break;
		case 'n': out[o++] = '\n'; break;
		case 'r': out[o++] = '\r'; break;
		case 't': out[o++] = '\t'; break;
		case 'u':
			if (i + 4 > n || (cp = hex4(s + i)) < 0) {
				out[o++] = c;   /* not from an encoder */
				break;
			}
			i += 4;
			if (cp >= 0xD800 && cp < 0xDC00 && i + 6 <= n &&
			    s[i] == '\\' && s[i + 1] == 'u' &&
			    (lo = hex4(s + i + 2)) >= 0xDC00 && lo < 0xE000) {
				cp = 0x10000 + ((cp - 0xD800) << 10) +
				    (lo - 0xDC00);
				i += 6;
			}
			o += utf8_put(out + o, (unsigned long) cp);
			break;
		default:   /* " \ / */
			out[o++] = c;
		}
	}
	return o;
}

/* Print each marked string of an encoded text as its bare number, and
 * each raw one as its JSON text, in place (the text only shrinks). */
static void
unmark(char *s)
{
	size_t i = 0, o = 0, len = strlen(s), n;
	int nul = 0;

	while (i < len) {
		n = 1;
		if (s[i] == '"') {
			n = string_skip(s, len, i + 1, &nul) - i;
			if (is_raw(s + i, n)) {
				o += unescape(s + i + 1 + RAW_MARK_LEN,
				    n - 2 - RAW_MARK_LEN, s + o);
				i += n;
				continue;
			}
			if (is_marked(s + i, n)) {
				memmove(s + o, s + i + 1 + U64_MARK_LEN,
				    n - U64_EXTRA);
				o += n - U64_EXTRA;
				i += n;
				continue;
			}
		}
		memmove(s + o, s + i, n);
		o += n;
		i += n;
	}
	s[o] = '\0';
}

char *
api_json_dumps(const json_t *j, size_t flags)
{
	char *s = json_dumps(j, flags);

	if (s != NULL && strstr(s, U64_MARK) != NULL)
		unmark(s);
	return s;
}
