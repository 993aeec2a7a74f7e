/* api_tls.h: a TLS terminator in front of the HTTP server (see api_tls.c). */
#ifndef API_TLS_H
#define API_TLS_H

#include <stdint.h>

struct api_tls;

/*
 * Listen on host:port (0: any free port) for TLS, and pipe each
 * connection's plaintext to 127.0.0.1:backend.
 */
int api_tls_start(const char *host, uint16_t port, const char *cert,
    const char *key, uint16_t backend, struct api_tls **out);
uint16_t api_tls_port(const struct api_tls *t);

/* Stop accepting new connections (open ones go on). */
void api_tls_stop_accepting(struct api_tls *t);

/* Stop accepting, end the open connections, free. NULL is fine. */
void api_tls_stop(struct api_tls *t);

#endif
