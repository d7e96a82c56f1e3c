export * from './artifact';
export * from './keys';
export { LocalStore } from './local';
export { S3Store, classifyS3Error, PART_SIZE } from './s3';
export { openStore, type S3Settings } from './open';
export { sha256Hex } from './hashing';
