/*
 * proto_impl.h: what the the proto/ sources files share. Module-internal: it pulls
 * in the generated code, which nothing outside proto/ may see.
 */
#ifndef PROTO_IMPL_H
#define PROTO_IMPL_H

#include <stdint.h>

#include "proto.h"
#include "vdb.h"
#include "vecdb.pb-c.h"

/* protobuf-c allocations go through vdb_malloc/vdb_free. */
extern ProtobufCAllocator proto_allocator;

/* Pack @p m into a vdb_malloc'ed buffer (NULL when empty). */
int proto_pack(const ProtobufCMessage *m, uint8_t **out, size_t *len);

/* Unpack a @p d message; VECDB_EINVAL naming it when malformed. Free the
 * result with proto_unpacked_free(). */
int proto_unpack(const ProtobufCMessageDescriptor *d, const uint8_t *buf,
    size_t len, ProtobufCMessage **out);
void proto_unpacked_free(void *m);

/* A vdb_malloc'ed copy of n bytes (NULL when n is 0). */
int proto_bytes_dup(const void *p, size_t n, uint8_t **out);

/* A const string as the generated structs' char * (packing only reads). */
char *proto_str(const char *s);

/* Copy a required (or optional) name of at most max bytes into dst. */
int proto_name_get(const char *s, size_t max, int required, const char *what,
    char *dst);

/* Fill @p pb (borrowing from @p id) for packing; kind NONE: returns 0 and
 * the caller leaves the field NULL. */
int proto_id_set(const vecdb_id *id, Vecdb__PointId *pb);

/* Decode an id; NULL pb is kind NONE, refused when @p required. */
int proto_id_get(const Vecdb__PointId *pb, int required, const char *what,
    vecdb_id *out);

/* Ids to the wire: *pbs is n structs, *ptrs n pointers to them; free both
 * with vdb_free(). Kind NONE is refused. */
int proto_ids_to_pb(const vecdb_id *ids, size_t n, Vecdb__PointId **pbs,
    Vecdb__PointId ***ptrs);

/* Decode n ids (all required) into a vdb_malloc'ed array (NULL if n 0). */
int proto_ids_from_pb(Vecdb__PointId *const *pbs, size_t n, size_t max,
    const char *what, vecdb_id **out);

/* Check that n floats are finite. */
int proto_floats_check(const float *v, size_t n, const char *what);

/* A vdb_malloc'ed copy of n floats (NULL if n 0). */
int proto_floats_dup(const float *v, size_t n, float **out);

/* A point's named vectors (sparse, then dense: SparseVector with dense
 * set) or a record's to the wire, borrowing names and arrays: *out is one
 * vdb_malloc'ed block of *n pointers and the *n messages they point to
 * (NULL if none); free it with vdb_free(). */
int proto_sparse_to_pb(const vecdb_point_sparse *ps,
    Vecdb__SparseVector ***out, size_t *n);
int proto_sparse_records_to_pb(const vecdb_record *r,
    Vecdb__SparseVector ***out, size_t *n);
/* Checked copies of n wire named vectors (at most VECDB_SPARSE_MAX sparse
 * and VECDB_VECTORS_MAX dense): for a point into *out (remove allowed;
 * free with proto_sparse_free()), or a record's into r's sparse and
 * named arrays (no remove; vdb_record_fini frees them, also on
 * failure). */
int proto_sparse_from_pb(Vecdb__SparseVector *const *pb, size_t n,
    vecdb_point_sparse *out);
void proto_sparse_free(vecdb_point_sparse *ps);
int proto_sparse_records_from_pb(Vecdb__SparseVector *const *pb, size_t n,
    vecdb_record *r);

/* A vector name ("" or NULL: the default vector) into buf, *out pointing
 * at it (or NULL). */
int proto_using_get(const char *s, char buf[VECDB_NAME_MAX + 1],
    const char **out);

/* A filter's JSON: "" -> NULL, else a checked copy. */
int proto_filter_get(const char *s, char **out);

/* The records conversions shared by the result messages. */
struct records_pb {
	Vecdb__Records m;      /* the message, pointing into the rest */
	Vecdb__Record *recs;   /* its records */
	Vecdb__Record **ptrs;  /* pointers to them */
	Vecdb__PointId *ids;   /* [0] next, [i + 1] record i's id */
};
int proto_records_to_pb(const vecdb_records *r, struct records_pb *pb);
void proto_records_pb_fini(struct records_pb *pb);
int proto_records_from_pb(const Vecdb__Records *pb, vecdb_records **out);
int proto_record_to_pb(const vecdb_record *r, Vecdb__Record *pb,
    Vecdb__PointId *id);
int proto_record_from_pb(const Vecdb__Record *pb, vecdb_record *out);

#endif /* PROTO_IMPL_H */
