/** A validated manifest (contract §2). Built only by `parseManifest`; everything downstream trusts it. */
export interface Manifest {
  manifestVersion: '1.0' | '2.0';
  accessKeyId: string;
  bucket: string;
  deviceId: string;
  returnAddress: ReturnAddress;
  prefix: string;
  /** literal → literal, in manifest order */
  substitutions: Array<[from: string, to: string]>;
  /** the source texts of `ignore`, in manifest order */
  ignore: string[];
  /** extension (no dot, case-sensitive) → MIME type */
  contentTypes: Map<string, string>;
  defaultContentType: string;
  setContentEncodingForGzFiles: boolean;
  acl: Acl;
  cacheControl?: string;
  contentDisposition?: string;
  contentLanguage?: string;
  expires?: string;
  storageClass?: string;
  /** user metadata set on every object, in manifest order */
  staticMetadata: Array<[name: string, value: string]>;
  diskTimestampMetadataKey?: string;
  logBucket: string;
  logPrefix: string;
  notificationEmail: string[];
  eraseDevice: boolean;
  generator?: string;
  serviceLevel?: string;
}

export interface ReturnAddress {
  name: string;
  company?: string;
  street1: string;
  street2?: string;
  street3?: string;
  city: string;
  stateOrProvince: string;
  postalCode: string;
  phoneNumber: string;
  country: string;
}

export const ACLS = ['private', 'public-read', 'public-read-write', 'authenticated-read'] as const;
export type Acl = (typeof ACLS)[number];

export const DEFAULT_CONTENT_TYPE = 'binary/octet-stream';
