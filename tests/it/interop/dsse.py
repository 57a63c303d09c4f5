"""DSSE interop with securesystemslib, an independent implementation.

  dsse.py sign STATEMENT_FILE       prints {"public": HEX, "envelope": {...}}
  dsse.py verify ENVELOPE_FILE HEX [KEYID]
                                    exits 0 when the envelope verifies with that key
                                    (named KEYID, by default HEX itself)
"""
import json
import sys

from securesystemslib.dsse import Envelope
from securesystemslib.signer import CryptoSigner, SSlibKey


def sign(statement_file):
    signer = CryptoSigner.generate_ed25519()
    with open(statement_file, "rb") as f:
        body = f.read()
    envelope = Envelope(
        payload=body, payload_type="application/vnd.in-toto+json", signatures={}
    )
    envelope.sign(signer)
    public = signer.public_key.keyval["public"]
    print(json.dumps({"public": public, "envelope": envelope.to_dict()}))


def verify(envelope_file, public_hex, keyid=None):
    with open(envelope_file) as f:
        envelope = Envelope.from_dict(json.load(f))
    # The forge names its keys by their public bytes in hex: that is the keyid here too.
    key = SSlibKey(keyid or public_hex, "ed25519", "ed25519", {"public": public_hex})
    envelope.verify([key], 1)
    print("verified")


if __name__ == "__main__":
    if sys.argv[1] == "sign":
        sign(sys.argv[2])
    else:
        verify(*sys.argv[2:5])
