/*
 * vdb_json.c: what we need of a JSON text without parsing it: how deep it
 * nests, and its reals printed in the fewest digits that read back as
 * the same doubles.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "vdb.h"

size_t
vdb_json_depth(const char *s, size_t len)
{
	size_t depth = 0, max = 0;
	int in_str = 0;

	for (size_t i = 0; i < len; i++) {
		char c = s[i];
		if (in_str) {
			if (c == '\\')
				i++;
			else if (c == '"')
				in_str = 0;
		} else if (c == '"') {
			in_str = 1;
		} else if (c == '[' || c == '{') {
			if (++depth > max)
				max = depth;
		} else if ((c == ']' || c == '}') && depth > 0) {
			depth--;
		}
	}
	return max;
}

/*
 * Print d as jansson prints a real, with prec significant digits: "%.*g"
 * with no '+' and no leading zeros in the exponent, and ".0" after what
 * would otherwise read back as an integer. Returns the length.
 */
static size_t
real_print(double d, int prec, char *buf, size_t cap)
{
	char *e, *from;
	size_t n = (size_t) snprintf(buf, cap, "%.*g", prec, d);

	if (n >= cap - 2)
		return 0;
	if ((e = strchr(buf, 'e')) == NULL) {
		if (strchr(buf, '.') == NULL) {
			memcpy(buf + n, ".0", 3);
			n += 2;
		}
		return n;
	}
	e++;
	from = e;
	if (*e == '-')
		e++, from++;
	else if (*e == '+')
		from++;
	while (*from == '0' && from[1] != '\0')
		from++;
	memmove(e, from, strlen(from) + 1);
	return strlen(buf);
}

/* Is c part of a JSON number? */
static int
number_char(char c)
{
	return (c >= '0' && c <= '9') || c == '-' || c == '+' || c == '.' ||
	    c == 'e' || c == 'E';
}

/*
 * The number tok (n characters) in fewer characters into buf, if it is a
 * real that 15 or 16 significant digits give back exactly ("%g" drops
 * trailing zeros: 15 finds 0.1 as "0.1"): their length, else 0.
 */
static size_t
real_shorter(const char *tok, size_t n, char *buf, size_t cap)
{
	double d;

	if (strpbrk(tok, ".eE") == NULL)
		return 0;   /* an integer */
	d = strtod(tok, NULL);
	for (int p = 15; p <= 16; p++) {
		size_t k = real_print(d, p, buf, cap);
		if (k > 0 && k < n && strtod(buf, NULL) == d)
			return k;
	}
	return 0;
}

size_t
vdb_json_reals_shortest(char *s)
{
	size_t len = strlen(s), i = 0, o = 0;
	char tok[64], buf[64];

	while (i < len) {
		size_t n = 1, m = 0;
		if (s[i] == '"') {   /* a string: copied as it is */
			while (i + n < len && s[i + n] != '"')
				n += s[i + n] == '\\' ? 2 : 1;
			n = i + n < len ? n + 1 : len - i;
		} else if (s[i] == '-' || (s[i] >= '0' && s[i] <= '9')) {
			while (i + n < len && number_char(s[i + n]))
				n++;
			if (n < sizeof(tok)) {
				memcpy(tok, s + i, n);
				tok[n] = '\0';
				m = real_shorter(tok, n, buf, sizeof(buf));
			}
		}
		if (m > 0)
			memcpy(s + o, buf, m);
		else
			memmove(s + o, s + i, n);
		o += m > 0 ? m : n;
		i += n;
	}
	s[o] = '\0';
	return o;
}
