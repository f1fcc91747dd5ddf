// The per-job secret that admits a rank to the TCP rendezvous store (issue 18: anyone who reached its port could fill
// rank 0's memory or overwrite keys). Every rank of a job must get the same one; the first found wins:
//   HPCINFER_STORE_SECRET             set by `hpcinfer launch` for its ranks (fresh random bytes per job), or by you
//                                     (e.g. exported in an sbatch script before srun / mpirun);
//   HPCINFER_STORE_SECRET_FILE        a file holding it;
//   ~/.hpcinfer/store_secret          created on first use (random, mode 0600 in a 0700 directory): shared by the
//                                     nodes of a cluster whose home directory is shared, which is the usual case.
// A secret file readable by group or others is refused (naming it). The secret never crosses the network: the
// server sends a random nonce, the client answers HMAC-SHA256(secret, nonce) (OpenSSL's libcrypto).
#pragma once

#include <array>
#include <cstdint>
#include <string>

namespace hpcinfer {

std::string store_secret();
// 32 random bytes as 64 hex digits (OpenSSL RAND_bytes): a new job's secret.
std::string new_store_secret();
// n random bytes (a nonce).
void random_bytes(uint8_t* out, size_t n);
// HMAC-SHA256(secret, "hpcinfer-store/1" || nonce).
std::array<uint8_t, 32> store_proof(const std::string& secret, const uint8_t* nonce, size_t n);
// Constant-time comparison of two proofs.
bool same_proof(const std::array<uint8_t, 32>& a, const std::array<uint8_t, 32>& b);

}  // namespace hpcinfer
