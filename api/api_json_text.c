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
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>

#include <string.h>

#include "api_json_text.h"
#include "vdb.h"

#define U64_MARK "\\u0000"     /* the marker string's prefix, as text */
#define U64_MARK_LEN 6
#define U64_EXTRA (U64_MARK_LEN + 2) /* the marker and quotes a number
				      * gains in the text */

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

json_t *
api_json_loadb(const char *buf, size_t len, size_t flags, json_error_t *err)
{
	long big = mark_scan(buf, len, NULL);
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

/* Print each marked string of an encoded text as its bare number, in
 * place (the text only shrinks). */
static void
unmark(char *s)
{
	size_t i = 0, o = 0, len = strlen(s), n;
	int nul = 0;

	while (i < len) {
		n = 1;
		if (s[i] == '"') {
			n = string_skip(s, len, i + 1, &nul) - i;
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
